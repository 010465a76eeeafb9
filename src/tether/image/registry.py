"""A client of the OCI distribution v2 API (the Docker registry protocol) on http.client.

Why our own: the protocol pieces an engine needs are few (ping, token or basic auth, manifests,
blob GET/HEAD and monolithic upload) and a library would bring a second HTTP stack into the
daemon. What matters is done as registries expect it:
- the scheme is chosen once per client by pinging `/v2/`: HTTPS always for secure registries;
  for insecure ones (loopback, `--insecure-registry`) HTTPS without verification first, then
  plain HTTP, as dockerd does;
- a 401 carries a `WWW-Authenticate` challenge: `Bearer` means fetching a token from the realm
  for the repository scope (sending the credentials there as basic auth), `Basic` means sending
  them to the registry itself;
- every blob read is hashed while it is written and rejected when it does not match its digest.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable
from urllib.parse import SplitResult, urlencode, urljoin, urlsplit

from tether.rules import refs
from tether.rules.errors import ApiError, NotFound

DOCKER_HUB_HOST = "registry-1.docker.io"
INDEX_HOST = "index.docker.io"  # Docker Hub's v1 index: search
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG_V2 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (MANIFEST_V2, OCI_MANIFEST)
INDEX_TYPES = (MANIFEST_LIST_V2, OCI_INDEX)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
TIMEOUT = 60.0
CHUNK = 1 << 20
MAX_REDIRECTS = 5
MAX_MANIFEST_BYTES = 4 << 20
_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')

Progress = Callable[[int], None]
"""Called with the bytes moved so far, as they move."""


class RegistryError(ApiError):
    """A registry said no or could not be reached; `status` is what dockerd would answer: never
    401 for a pull or push (the docker CLI would take it as a cue to prompt for a login)."""

    def __init__(self, message: str, status: int = 500, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message, status)
        self.codes = codes  # the registry's error codes (UNAUTHORIZED, NAME_UNKNOWN, ...)


class NoCredentials(RegistryError):
    """Basic auth is wanted and no credentials were given. dockerd's pull names the request;
    its push reports only `bare`."""

    bare = "no basic auth credentials"

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Credentials:
    """What a user logged in with: a username and password."""

    username: str = ""
    password: str = ""

    @property
    def empty(self) -> bool:
        return not self.username

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header: the scheme and its parameters (realm, service)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="https://auth/token",service="registry"` -> Challenge("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    return Challenge(scheme.lower(), dict(_AUTH_PARAM.findall(rest)))


def registry_host(domain: str) -> str:
    """Where a reference's domain is served: Docker Hub's names live on registry-1.docker.io."""
    return DOCKER_HUB_HOST if domain == refs.DEFAULT_DOMAIN else domain


def is_insecure(host: str, insecure_registries: Iterable[str] = ()) -> bool:
    """dockerd's rule: loopback registries and those named by `--insecure-registry` (a host[:port]
    or a CIDR) may be spoken to without verified TLS."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None and address.is_loopback:
        return True
    for entry in insecure_registries:
        if entry == host or entry == name:
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def pick_platform(index: dict, os_name: str, arch: str) -> dict:
    """The manifest descriptor of an index for this platform, else linux/amd64; Docker's error
    otherwise."""
    manifests = index.get("manifests") or []
    for want_arch in (arch, "amd64"):
        for desc in manifests:
            platform = desc.get("platform") or {}
            if platform.get("os") == os_name and platform.get("architecture") == want_arch:
                return desc
    raise NotFound(f"no matching manifest for {os_name}/{arch} in the manifest list entries")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Reply:
    """A finished exchange: status, headers (lower-case names) and the open response."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    def read(self, limit: int = MAX_MANIFEST_BYTES) -> bytes:
        data = self.resp.read(limit + 1)
        if len(data) > limit:
            raise RegistryError("registry reply is too large")
        return data

    def close(self) -> None:
        self.resp.close()
        self.conn.close()

    def error(self, what: str) -> RegistryError:
        """The registry's error body as dockerd words it: `<what>: <code lower>: <message>`."""
        body = self.read()
        self.close()
        try:
            errors = json.loads(body).get("errors") or []
        except (ValueError, AttributeError):
            errors = []
        if errors:
            detail = "; ".join(f"{e.get('code', '').lower().replace('_', ' ')}: {e.get('message', '')}"
                               for e in errors)
        else:
            detail = f"{self.status} {self.resp.reason}".strip()
        codes = tuple(str(e.get("code", "")) for e in errors)
        return RegistryError(f"{what}: {detail}", 404 if self.status == 404 else 500, codes)


class RegistryClient:
    """One repository on one registry, with the scopes and credentials of one operation.

    Threads may share a client (a pull fetches layers in parallel): the scheme and the
    authorization are settled under a lock, each request has a connection of its own.
    """

    def __init__(self, domain: str, repository: str, credentials: Credentials | None = None,
                 insecure_registries: Iterable[str] = (), push: bool = False) -> None:
        self.host = registry_host(domain)
        self.repository = repository
        self.credentials = credentials or Credentials()
        self.insecure = is_insecure(self.host, insecure_registries)
        self.scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        self._scheme: str | None = None
        self._challenge: str | None = None  # the ping's, answered by the first request
        self._authorization: str | None = None
        self._lock = threading.RLock()
        self._contexts: dict[bool, ssl.SSLContext] = {}

    # --- transport ---

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=TIMEOUT, blocksize=CHUNK)
        context = self._tls(verify=not (self.insecure and netloc == self.host))
        return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=context, blocksize=CHUNK)

    def _tls(self, verify: bool) -> ssl.SSLContext:
        """A TLS context made once per client (loading the CA store takes tens of ms)."""
        with self._lock:
            if verify not in self._contexts:
                context = ssl.create_default_context()
                if not verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._contexts[verify] = context
            return self._contexts[verify]

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: BinaryIO | bytes | None = None) -> _Reply:
        """One request to an absolute URL, following redirects (blob stores redirect to CDNs);
        the registry's authorization is only sent to the registry itself."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            hdrs = dict(headers)
            if self._authorization and parts.netloc == self.host:
                hdrs.setdefault("Authorization", self._authorization)
            conn = self._connect(parts.scheme, parts.netloc)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request(method, target, body=body, headers=hdrs)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise RegistryError(f'{method.title()} "{url}": {_dial_error(exc, parts)}') from exc
            reply = _Reply(conn, resp)
            if resp.status in (301, 302, 303, 307, 308) and "location" in reply.headers:
                reply.read()
                reply.close()
                url = urljoin(url, reply.headers["location"])
                if resp.status == 303:
                    method, body = "GET", None
                continue
            return reply
        raise RegistryError(f'{method.title()} "{url}": too many redirects')

    def _base(self) -> str:
        with self._lock:
            if self._scheme is None:
                self._scheme = self._ping()
            return f"{self._scheme}://{self.host}"

    def _ping(self) -> str:
        """Choose the scheme (see the module docstring) and learn the auth challenge."""
        schemes = ["https", "http"] if self.insecure else ["https"]
        last: RegistryError | None = None
        for scheme in schemes:
            try:
                reply = self._send("GET", f"{scheme}://{self.host}/v2/", {})
            except RegistryError as exc:
                last = exc
                continue
            reply.read()
            reply.close()
            if reply.status == 401:
                self._challenge = reply.headers.get("www-authenticate", "")
            return scheme
        assert last is not None
        raise last

    def _authenticate(self, header: str, method: str, url: str) -> None:
        """Answer a challenge: a bearer token from the realm, or basic auth to the registry.
        Without credentials for basic auth, dockerd's error names the request that needed them."""
        challenge = parse_challenge(header)
        if challenge.scheme == "basic":
            if self.credentials.empty:
                raise NoCredentials(f'{method.title()} "{url}": no basic auth credentials')
            self._authorization = self.credentials.basic()
        elif challenge.scheme == "bearer":
            self._authorization = "Bearer " + self._token(challenge)

    def _token(self, challenge: Challenge) -> str:
        """The token server's reply for our scope (`token`, or OAuth's `access_token`)."""
        realm = challenge.params.get("realm", "")
        if not realm:
            raise RegistryError("bearer challenge without a realm")
        query = {"scope": self.scope} if self.repository else {}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        if self.credentials.username:
            query["account"] = self.credentials.username
        headers = {} if self.credentials.empty else {"Authorization": self.credentials.basic()}
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        reply = self._send("GET", url, headers)
        if reply.status != 200:
            body = reply.read()
            reply.close()
            detail = _error_detail(body) or f"{reply.status} {reply.resp.reason}"
            raise RegistryError(f'Get "{realm}": {detail}')
        body = reply.read()
        reply.close()
        try:
            data = json.loads(body)
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise RegistryError(f"token server {realm} sent no token") from exc

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: BinaryIO | bytes | None = None, retry_body: bool = True) -> _Reply:
        """A request to `/v2/<path>` of this registry; a 401 with a new challenge (scope
        change, token expiry) is answered once and the request repeated if its body allows."""
        url = path if path.startswith(("http://", "https://")) else f"{self._base()}/v2/{path}"
        with self._lock:
            if self._challenge is not None:
                challenge, self._challenge = self._challenge, None
                self._authenticate(challenge, method, url)
            before = self._authorization
        reply = self._send(method, url, headers or {}, body)
        if reply.status == 401 and retry_body:
            reply.read()
            reply.close()
            with self._lock:
                if self._authorization == before:  # no other thread has answered it meanwhile
                    self._authenticate(reply.headers.get("www-authenticate", ""), method, url)
            if self._authorization != before:
                reply = self._send(method, url, headers or {}, body)
        return reply

    def login(self) -> None:
        """Check the credentials (POST /auth): the registry must accept them at `/v2/`."""
        base = self._base()
        try:
            reply = self.request("GET", f"{base}/v2/")
        except RegistryError as exc:
            raise RegistryError(exc.message, 401) from exc
        reply.read()
        reply.close()
        if reply.status != 200:
            raise RegistryError(f"login attempt to {base}/v2/ failed with status: {reply.status} "
                                f"{http.HTTPStatus(reply.status).phrase}", 401 if reply.status == 401 else 500)

    # --- manifests ---

    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index by tag or digest. A tag is first
        resolved to its digest with HEAD (as dockerd does), so the bytes are always verified
        against a digest when the registry gives one."""
        if not reference.startswith("sha256:"):
            head = self.request("HEAD", f"{self.repository}/manifests/{reference}", {"Accept": ACCEPT})
            head.close()
            digest = head.headers.get("docker-content-digest", "")
            if head.status == 200 and digest.startswith("sha256:"):
                reference = digest
        reply = self.request("GET", f"{self.repository}/manifests/{reference}", {"Accept": ACCEPT})
        if reply.status != 200:
            raise reply.error(self._manifest_what(reference))
        data = reply.read()
        reply.close()
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(f"manifest verification failed for digest {reference}")
        media_type = reply.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in (*MANIFEST_TYPES, *INDEX_TYPES):
            media_type = json.loads(data).get("mediaType", media_type)
        return data, media_type, digest

    def search(self, query: str, limit: int) -> dict:
        """The index's v1 search (`/v1/search?q=&n=`), as dockerd asks Docker Hub's
        index.docker.io (always over HTTPS) or another registry (scheme chosen as for pulls)."""
        base = f"https://{self.host}" if self.host == INDEX_HOST else self._base()
        url = f"{base}/v1/search?{urlencode({'q': query, 'n': limit})}"
        reply = self._send("GET", url, {"Accept": "application/json"})
        data = reply.read()
        reply.close()
        if reply.status != 200:
            raise RegistryError(f"Unexpected status code {reply.status}")
        try:
            result = json.loads(data)
        except ValueError as exc:
            raise RegistryError(f"invalid search reply from {self.host}: {exc}") from None
        if not isinstance(result, dict):
            raise RegistryError(f"invalid search reply from {self.host}")
        return result

    def _manifest_what(self, reference: str) -> str:
        name = f"{self.host}/{self.repository}" if self.host != DOCKER_HUB_HOST else self.repository
        sep = "@" if reference.startswith("sha256:") else ":"
        return f"manifest for {name}{sep}{reference} not found"

    def put_manifest(self, tag: str, data: bytes, media_type: str) -> str:
        """Store a manifest under `tag`; its digest (the registry's, checked against ours)."""
        reply = self.request("PUT", f"{self.repository}/manifests/{tag}",
                             {"Content-Type": media_type, "Content-Length": str(len(data))}, data)
        if reply.status not in (200, 201):
            raise reply.error("failed to put manifest")
        reply.read()
        reply.close()
        digest = sha256_digest(data)
        if reply.headers.get("docker-content-digest", digest) != digest:
            raise RegistryError("registry stored the manifest under another digest")
        return digest

    def list_tags(self) -> list[str]:
        """Every tag of the repository, following the `Link: <...>; rel="next"` pages."""
        tags: list[str] = []
        path = f"{self.repository}/tags/list"
        while path:
            reply = self.request("GET", path)
            if reply.status != 200:
                raise reply.error(f"listing tags of {self.repository}")
            tags.extend(json.loads(reply.read()).get("tags") or [])
            reply.close()
            link = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', reply.headers.get("link", ""))
            path = urljoin(f"{self._base()}/", link[1]) if link else ""
        return tags

    # --- blobs ---

    def has_blob(self, digest: str) -> bool:
        reply = self.request("HEAD", f"{self.repository}/blobs/{digest}")
        reply.close()
        if reply.status in (200, 404):
            return reply.status == 200
        raise RegistryError(f"checking blob {digest}: {reply.status} {reply.resp.reason}", 500)

    def fetch_blob(self, digest: str, out: BinaryIO, progress: Progress | None = None) -> int:
        """Write a blob to `out` while hashing it; its size. Raises when the bytes do not match
        the digest (the caller discards what was written)."""
        expected = refs.sha256_hex(digest)
        reply = self.request("GET", f"{self.repository}/blobs/{digest}")
        if reply.status != 200:
            raise reply.error(f"fetching blob {digest}")
        hasher = hashlib.sha256()
        done = 0
        try:
            while chunk := reply.resp.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done)
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"fetching blob {digest}: {_reason(exc)}") from exc
        finally:
            reply.close()
        if hasher.hexdigest() != expected:
            raise RegistryError(f"filesystem layer verification failed for digest {digest}")
        return done

    def upload_blob(self, digest: str, size: int, source: BinaryIO,
                    progress: Progress | None = None) -> None:
        """A monolithic upload: POST opens a session, one PUT with `?digest=` sends and closes it."""
        reply = self.request("POST", f"{self.repository}/blobs/uploads/", {"Content-Length": "0"}, b"")
        if reply.status != 202 or "location" not in reply.headers:
            raise reply.error(f"starting upload of {digest}")
        reply.read()
        reply.close()
        location = urljoin(f"{self._base()}/v2/", reply.headers["location"])
        location += ("&" if "?" in location else "?") + urlencode({"digest": digest})
        body = _Counting(source, progress) if progress is not None else source
        reply = self.request("PUT", location, {"Content-Type": "application/octet-stream",
                                               "Content-Length": str(size)}, body, retry_body=False)
        if reply.status not in (201, 204):
            raise reply.error(f"uploading blob {digest}")
        reply.read()
        reply.close()


class _Counting:
    """A file reader that reports how much http.client has taken from it."""

    def __init__(self, source: BinaryIO, progress: Progress) -> None:
        self._source = source
        self._progress = progress
        self._done = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n if n > 0 else CHUNK)
        self._done += len(data)
        self._progress(self._done)
        return data


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _dial_error(exc: BaseException, parts: SplitResult) -> str:
    """A connection failure in Go's words, as dockerd reports it (`dial tcp ...`)."""
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return "http: server gave HTTP response to HTTPS client"
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host}: {str(exc.strerror or exc).lower()}"
    if isinstance(exc, (ssl.SSLError, http.client.HTTPException)) or not isinstance(exc, OSError):
        return _reason(exc)
    if exc.strerror:
        return f"dial tcp {host}:{port}: connect: {exc.strerror.lower()}"
    return _reason(exc)


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        errors = data.get("errors") or []
        if errors:
            return "; ".join(str(e.get("message", "")) for e in errors)
        return str(data.get("details") or data.get("error") or "")
    return ""



def credentials_from_header(value: str | None) -> Credentials | None:
    """The `X-Registry-Auth` header: base64url JSON of Docker's AuthConfig. Like dockerd, an
    undecodable header counts as no credentials (old clients send junk for anonymous pulls)."""
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError):
        return None
    return credentials_from_json(data) if isinstance(data, dict) else None


def credentials_from_json(data: dict) -> Credentials | None:
    """Docker's AuthConfig JSON (header or POST /auth body), with its `auth` shorthand."""
    username = str(data.get("username") or "")
    password = str(data.get("password") or "")
    if not username and data.get("auth"):
        try:
            username, _, password = base64.b64decode(data["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
    creds = Credentials(username, password)
    return None if creds.empty else creds
