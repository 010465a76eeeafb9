"""The build context: the tar the client sends (made by `tether build` here, by the docker CLI or
SDK elsewhere), unpacked by the daemon into a directory that COPY and ADD read from.

Both sides apply `.dockerignore`: the client so that ignored files are never sent (Docker's CLI
keeps the Dockerfile and .dockerignore in the tar even when listed, the daemon needs them), the
daemon so that a client that did not filter gets Docker's result anyway.
"""
from __future__ import annotations

import io
import os
import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from tether.errors import BadRequest
from tether.image import layers
from tether.image.build import dockerignore
from tether.runtime import rootfd
from tether.runtime.rootfd import Root

IGNORE_FILE = ".dockerignore"
DEFAULT_DOCKERFILE = "Dockerfile"


def _entries(root: Path) -> list[str]:
    """Every path below `root`, relative and slash-separated, parents first, names sorted."""
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(current, root)
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(current, d))]:
            found.append(name if rel == "." else f"{rel}/{name}")
        found.extend(d if rel == "." else f"{rel}/{d}" for d in dirs
                     if not os.path.islink(os.path.join(current, d)))
    return sorted(found)


def write_context_tar(directory: Path, out: BinaryIO, keep: tuple[str, ...] = (DEFAULT_DOCKERFILE,),
                      extra: dict[str, bytes] | None = None, hidden: bool = False) -> None:
    """Tar `directory` for POST /build, leaving out what .dockerignore excludes except the
    files named in `keep` (the Dockerfile); `extra` adds files that are not in the directory
    (a Dockerfile given with `-f` from outside the context, or from stdin). With `hidden`, the
    extra files are appended to the tar's .dockerignore, as the docker CLI does, so the daemon
    drops them from the context once it has read them."""
    ignore = directory / IGNORE_FILE
    ignore_text = ignore.read_text() if ignore.is_file() else None
    patterns = dockerignore.parse(ignore_text or "")
    always = {IGNORE_FILE, *keep}
    extra = dict(extra or {})
    if hidden and extra:
        extra[IGNORE_FILE] = ((IGNORE_FILE if ignore_text is None else ignore_text) + "".join(
            f"\n{name}\n" for name in extra)).encode()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in _entries(directory):
            if rel in extra or (rel not in always and dockerignore.excluded(rel, patterns)):
                continue
            info = tar.gettarinfo(str(directory / rel), arcname=rel)
            info.uid = info.gid = 0  # as the docker CLI: ownership is the daemon's choice
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)  # whole seconds: no PAX record for each entry
            if info.isreg():
                with open(directory / rel, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))


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
    raise BadRequest(f"Cannot locate specified Dockerfile: {name or DEFAULT_DOCKERFILE}")


def read_dockerfile(root: Path, name: str) -> str:
    """The Dockerfile's text, found as dockerd does (`dockerfile` query, then the lower-case
    `dockerfile` for the default name)."""
    for candidate in _candidates(name):
        path = root / candidate.lstrip("/")
        if path.is_file() and root.resolve() in path.resolve().parents:
            return path.read_text()
    raise BadRequest(f"Cannot locate specified Dockerfile: {name or DEFAULT_DOCKERFILE}")


def apply_dockerignore(root: Path) -> None:
    """Delete what .dockerignore excludes from an unpacked context (the Dockerfile included, as
    dockerd does once it has read it)."""
    text = _read_in_root(root, IGNORE_FILE)  # a symlink must not read a host file (dockerd's FullPath)
    if text is None:
        return
    patterns = dockerignore.parse(text)
    for rel in reversed(_entries(root)):  # children first: a `!` pattern may keep one of them
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
