"""Image references, parsed and normalised the way Docker's distribution/reference package does.

Clients type `busybox`, `library/busybox`, `docker.io/library/busybox:latest` or `localhost:5000/x/y:1`
and expect them to mean the same things, and to fail with the same words, as on Docker. So this
module follows reference.ParseNormalizedNamed step by step (domain split, `library/` prefix,
lowercase check, grammar) rather than inventing a simpler rule that disagrees at the edges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tether.rules.errors import BadRequest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
_ID_DIGEST_RE = re.compile(r"^sha256:([a-f0-9]{64})$")

ERR_FORMAT = "invalid reference format"
ERR_UPPERCASE = "invalid reference format: repository name must be lowercase"
ERR_TAG_FORMAT = "invalid tag format"


@dataclass(frozen=True)
class Reference:
    """A named reference: `domain/path[:tag][@digest]`, already normalised."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The fully qualified repository, e.g. `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker shows it, e.g. `busybox` or `localhost:5000/x`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def with_tag(self, tag: str) -> Reference:
        """The same repository with `tag` (digest dropped), or Docker's error for a bad tag."""
        if not _TAG_RE.match(tag):
            raise BadRequest(ERR_TAG_FORMAT)
        return Reference(self.domain, self.path, tag)

    def tag_name_only(self) -> Reference:
        """`latest` added when neither tag nor digest is given (reference.TagNameOnly)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG)
        return self

    def full(self) -> str:
        """The fully qualified string; Docker sorts RepoTags by it."""
        return self.name + self._suffix()

    def __str__(self) -> str:
        """The familiar string, the form stored in repositories.json and shown to users."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry only if it looks like one."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def _parse(full: str) -> Reference:
    """reference.Parse on an already-qualified string, with its error texts."""
    match = _REFERENCE_RE.match(full)
    if match is None:
        if _REFERENCE_RE.match(full.lower()):
            raise BadRequest(ERR_UPPERCASE)
        raise BadRequest(ERR_FORMAT)
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_MAX:
        raise BadRequest(f"repository name must not be more than {NAME_TOTAL_MAX} characters")
    domain, _, path = name.partition("/")
    return Reference(domain, path, tag, digest)


def parse_normalized(text: str) -> Reference:
    """reference.ParseNormalizedNamed: `busybox` -> docker.io/library/busybox (no default tag)."""
    if _HEX64_RE.match(text):
        raise BadRequest(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        raise BadRequest(ERR_UPPERCASE)
    return _parse(f"{domain}/{remainder}")


def parse_any(text: str) -> Reference | str:
    """reference.ParseAnyReference: a bare 64-hex or `sha256:<64hex>` is an image ID, else a name.

    Returns the ID as "sha256:<hex>" or a normalised Reference.
    """
    if _HEX64_RE.match(text):
        return f"sha256:{text}"
    if _ID_DIGEST_RE.match(text):
        return text
    return parse_normalized(text)


def normalize_tag(text: str) -> str:
    """The familiar `repo:tag` form a user-given tag is stored under (`latest` by default)."""
    return str(parse_normalized(text).tag_name_only())


def sort_key(familiar: str) -> str:
    """Sort RepoTags as Docker does: by the fully qualified reference string."""
    return parse_normalized(familiar).full()


def sha256_hex(digest: str) -> str:
    """The hex of a `sha256:<64 hex>` digest, anything else refused: digests come from
    manifests, configs and archives nobody vouches for, and name files in the store, so one like
    `sha256:../../etc/passwd` must never reach a path (other algorithms cannot be verified)."""
    match = _ID_DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise BadRequest(f"unsupported digest: {digest}")
    return match.group(1)
