"""`docker cp`'s archive API on a container's root filesystem, with every path kept inside it.

The root is a host directory, but paths in it mean what they mean *inside* the container: an
absolute symlink `/etc -> /host` must lead to `<root>/host`, never to the host's `/host`. So
symlinks are resolved here component by component against the root (as Docker's
FollowSymlinkInScope does) instead of by the host's realpath, and extraction creates each entry
in a parent resolved that way, without following the entry's own last component.
"""
from __future__ import annotations

import base64
import json
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from tether.engine.mountspec import MountPoint
from tether.errors import ApiError, BadRequest, NotFound

_MAX_LINKS = 255  # Docker's limit on symlinks followed in one resolution

# Go's os.FileMode type bits: the CLI decodes the stat header with them.
_GO_TYPE_BITS = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25),
                 (stat.S_ISSOCK, 1 << 24), (stat.S_ISBLK, 1 << 26),
                 (stat.S_ISCHR, (1 << 26) | (1 << 21)))
_GO_SPECIAL_BITS = ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20))


def resolve_in_root(root: Path, path: str, follow_last: bool = True) -> Path:
    """The host path of container path `path`, symlinks resolved as the container sees them.

    `..` never climbs above the root, absolute link targets restart at the root. With
    `follow_last=False` a symlink as the last component is returned itself (lstat semantics).
    """
    pending = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if (pending or follow_last) and candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise BadRequest(f"too many symlinks in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _go_mode(mode: int) -> int:
    bits = stat.S_IMODE(mode) & 0o777
    bits |= sum(go for test, go in _GO_TYPE_BITS if test(mode))
    bits |= sum(go for flag, go in _GO_SPECIAL_BITS if mode & flag)
    return bits


def _rfc3339(ts_ns: int) -> str:
    stamp = datetime.fromtimestamp(ts_ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    nanos = ts_ns % 1_000_000_000
    return stamp + (f".{nanos:09d}".rstrip("0") if nanos else "") + "Z"


@dataclass(frozen=True)
class PathStat:
    """Docker's ContainerPathStat, the JSON the CLI reads from `X-Docker-Container-Path-Stat`."""

    name: str
    size: int
    mode: int
    mtime: str
    link_target: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}

    def header(self) -> str:
        return base64.b64encode(json.dumps(self.to_json()).encode()).decode()


def _not_found(path: str, container: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {container}")


def stat_path(root: Path, path: str, container: str) -> tuple[Path, PathStat]:
    """Host path and stat of `path` (the last component not followed, as Docker's lstat).

    `linkTarget` is the link's target resolved in the container, as a container path.
    """
    host = resolve_in_root(root, path, follow_last=False)
    try:
        st = host.lstat()
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, container) from None
    target = ""
    if stat.S_ISLNK(st.st_mode):
        final = resolve_in_root(root, path, follow_last=True)
        target = "/" + str(final.relative_to(root)).lstrip(".")
    name = posixpath.basename(path.rstrip("/")) or "/"
    return host, PathStat(name, st.st_size, _go_mode(st.st_mode), _rfc3339(st.st_mtime_ns), target)


def check_writable(points: list[MountPoint], readonly_rootfs: bool, path: str) -> None:
    """Where `cp` may write (dockerd's extractToDir): into a writable mount, or anywhere else
    when the root is writable; its texts and status (a plain error: 500)."""
    target = posixpath.normpath("/" + path)
    covering = [mp for mp in points if mp.covers(target)]
    if covering:
        if not max(covering, key=lambda mp: len(mp.destination)).rw:
            raise ApiError("mounted volume is marked read-only", 500)
        return
    if readonly_rootfs:
        raise ApiError("container rootfs is marked read-only", 500)


def write_tar(host: Path, rebase: str, out: BinaryIO) -> None:
    """Stream a tar of `host` with its top entry named `rebase` (symlinks inside not followed)."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        tar.add(str(host), arcname=rebase, recursive=True)


def archive_name(path: str) -> str:
    """The name the archive's top entry gets: the path's base name, `.` for its contents."""
    if path.endswith("/.") or path in ("/", ""):
        return "."
    return posixpath.basename(path.rstrip("/"))


def extract_tar(root: Path, dest: str, container: str, source: BinaryIO,
                no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack `source` into directory `dest` of the container, nothing leaving the root."""
    dest_host = resolve_in_root(root, dest)
    if not dest_host.exists():
        raise _not_found(dest, container)
    if not dest_host.is_dir():
        raise BadRequest("extraction point is not a directory")
    dest_rel = "/" + str(dest_host.relative_to(root)).lstrip(".")
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=source, mode="r|*") as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            parent = resolve_in_root(root, posixpath.join(dest_rel, posixpath.dirname(name)))
            target = parent / posixpath.basename(name)
            _check_overwrite(target, member, no_overwrite_dir_non_dir)
            _create(root, dest_rel, tar, member, parent, target)
            if member.isdir():
                directories.append((target, member))
            else:
                _set_attributes(target, member)
    for target, member in reversed(directories):  # after their contents changed their mtimes
        _set_attributes(target, member)


def _check_overwrite(target: Path, member: tarfile.TarInfo, refuse: bool) -> None:
    if not refuse or not os.path.lexists(target):
        return
    existing_dir = target.is_dir() and not target.is_symlink()
    if existing_dir and not member.isdir():
        raise BadRequest(f"cannot overwrite directory {target.name!r} with non-directory")
    if member.isdir() and not existing_dir:
        raise BadRequest(f"cannot overwrite non-directory {target.name!r} with directory")


def _remove_non_dir(target: Path, keep_dir: bool) -> None:
    """Make room for a new entry: a directory stays when the entry is one too (tar merges)."""
    if not os.path.lexists(target):
        return
    if target.is_dir() and not target.is_symlink():
        if keep_dir:
            return
        shutil.rmtree(target)
    else:
        target.unlink()


def _create(root: Path, dest_rel: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
            parent: Path, target: Path) -> None:
    parent.mkdir(parents=True, exist_ok=True)
    _remove_non_dir(target, keep_dir=member.isdir())
    if member.isdir():
        target.mkdir(exist_ok=True)
    elif member.isreg():
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(tar.extractfile(member), out)  # type: ignore[arg-type]
    elif member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        linked = posixpath.normpath("/" + member.linkname).lstrip("/")
        source = resolve_in_root(root, posixpath.join(dest_rel, linked), follow_last=False)
        os.link(source, target, follow_symlinks=False)
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
        os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
    else:
        raise BadRequest(f"unsupported tar entry type for {member.name}")


def _set_attributes(target: Path, member: tarfile.TarInfo) -> None:
    """Owner, mode and mtime from the archive, as Docker keeps them (links: owner only)."""
    if member.islnk():
        return
    os.chown(target, member.uid, member.gid, follow_symlinks=False)
    if member.issym():
        return
    os.chmod(target, member.mode & 0o7777)
    os.utime(target, (member.mtime, member.mtime))
