"""The build context: the tar the client sends (made by `tether build` here, by the docker CLI or
SDK elsewhere), unpacked by the daemon into a directory that COPY and ADD read from.

Both sides apply `.dockerignore`: the client when it packs the tar (tether.rules.buildcontext),
the daemon here, so that a client that did not filter gets Docker's result anyway.
"""
from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from tether.image import layers
from tether.rules import dockerignore
from tether.rules.buildcontext import DEFAULT_DOCKERFILE, IGNORE_FILE, entries
from tether.rules.errors import ApiError, BadRequest
from tether.runtime import rootfd
from tether.runtime.rootfd import Root

def unpack_context(fileobj: BinaryIO, dest: Path) -> None:
    """Unpack a (possibly compressed) context tar into the existing directory `dest`, safely."""
    layers.extract(layers.decompressed(fileobj), dest)


def _candidates(name: str) -> list[str]:
    name = name or DEFAULT_DOCKERFILE
    return [name] + (["dockerfile"] if name == DEFAULT_DOCKERFILE else [])


def dockerfile_from_tar(fileobj: BinaryIO, name: str) -> str:
    """The Dockerfile's text read straight from a context tar, so that the daemon can refuse a
    Dockerfile it cannot parse before the build's stream starts, as dockerd does."""
    wanted = [posixpath.normpath(c.lstrip("/")) for c in _candidates(name)]
    if wanted[0] == ".." or wanted[0].startswith("../"):  # a 500 with an empty "()", as dockerd
        raise ApiError(f"forbidden path outside the build context: {name} ()")
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=layers.decompressed(fileobj), mode="r|") as tar:
            for member in tar:
                member_name = posixpath.normpath(member.name.lstrip("/"))
                if member.isreg() and member_name in wanted:
                    found[member_name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except tarfile.TarError as exc:
        raise BadRequest(f"invalid tar archive: {exc}") from None
    for candidate in wanted:
        if candidate in found:
            return found[candidate].decode(errors="replace")
    raise ApiError(f"Cannot locate specified Dockerfile: {name or DEFAULT_DOCKERFILE}")  # a 500


def read_dockerfile(root: Path, name: str) -> str:
    """The Dockerfile's text, found as dockerd does (`dockerfile` query, then the lower-case
    `dockerfile` for the default name)."""
    for candidate in _candidates(name):
        path = root / candidate.lstrip("/")
        if path.is_file() and root.resolve() in path.resolve().parents:
            return path.read_text()
    raise ApiError(f"Cannot locate specified Dockerfile: {name or DEFAULT_DOCKERFILE}")  # a 500


def apply_dockerignore(root: Path) -> None:
    """Delete what .dockerignore excludes from an unpacked context (the Dockerfile included, as
    dockerd does once it has read it)."""
    text = _read_in_root(root, IGNORE_FILE)  # a symlink must not read a host file (dockerd's FullPath)
    if text is None:
        return
    patterns = dockerignore.parse(text)
    for rel in reversed(entries(root)):  # children first: a `!` pattern may keep one of them
        path = root / rel
        if not dockerignore.excluded(rel, patterns):
            continue
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()


def _read_in_root(root: Path, path: str) -> str | None:
    """The text of the regular file `path` resolved inside `root`, None when there is none."""
    with Root.open(root) as fd_root:
        entry = fd_root.regular_file(path)
        if entry is None:
            return None
        try:
            with os.fdopen(rootfd.open_regular(entry), "rb") as f:
                return f.read().decode(errors="replace")
        finally:
            os.close(entry)
