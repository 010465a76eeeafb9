"""`docker cp`'s archive API on a container's root filesystem, with every path kept inside it.

The root is a directory the container controls, and paths in it mean what they mean *inside*
the container: an absolute symlink `/etc -> /host` must lead to `<root>/host`, never to the
host's `/host`, even when the container swaps a directory for such a symlink while a copy runs.
So nothing here is a host path: the root is an fd (runtime/rootfd.py), every container path is
resolved by openat2 inside it (Docker's FollowSymlinkInScope), and each entry is created, read
and given its attributes through the fd of its parent directory, its own name never followed.
"""
from __future__ import annotations

import base64
import errno
import json
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO

from tether.engine.mountspec import MountPoint
from tether.image.archive import add_tree
from tether.rules.errors import ApiError, BadRequest, NotFound
from tether.runtime import rootfd
from tether.runtime.rootfd import Root

# Go's os.FileMode type bits: the CLI decodes the stat header with them.
_GO_TYPE_BITS = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25),
                 (stat.S_ISSOCK, 1 << 24), (stat.S_ISBLK, 1 << 26),
                 (stat.S_ISCHR, (1 << 26) | (1 << 21)))
_GO_SPECIAL_BITS = ((stat.S_ISUID, 1 << 23), (stat.S_ISGID, 1 << 22), (stat.S_ISVTX, 1 << 20))


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


def _entry_path(path: str) -> str:
    """`path` without empty and `.` components, so that its last component is the entry a
    trailing `/` or `/.` names (`..` stays: it is resolved physically, after links)."""
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


def _open_entry(root: Root, path: str, container: str, follow: bool = False) -> int:
    """An O_PATH fd of `path`'s entry, its last component not followed (Docker's lstat)
    unless `follow`; dockerd's 404 when it is missing, a 400 for a symlink loop."""
    try:
        return root.open_at(_entry_path(path), os.O_PATH | (0 if follow else os.O_NOFOLLOW))
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path, container) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadRequest(f"too many symlinks in {path}") from None
        raise


def _resolved(root: Root, path: str) -> str:
    """The container path `path` leads to; a symlink loop is a 400."""
    try:
        return root.resolve(path)
    except OSError:
        raise BadRequest(f"too many symlinks in {path}") from None


def stat_path(root: Root, path: str, container: str) -> PathStat:
    """The stat of `path` (the last component not followed, as Docker's lstat); `linkTarget`
    is a link's target resolved in the container, as a container path."""
    fd = _open_entry(root, path, container)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    target = _resolved(root, path) if stat.S_ISLNK(st.st_mode) else ""
    name = posixpath.basename(path.rstrip("/")) or "/"
    return PathStat(name, st.st_size, _go_mode(st.st_mode), _rfc3339(st.st_mtime_ns), target)


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


def write_tar(root: Root, path: str, rebase: str, out: BinaryIO, container: str = "") -> None:
    """Stream a tar of `path` with its top entry named `rebase` (no symlink followed but those
    before the last component, inside the root)."""
    fd = _open_entry(root, path, container)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            add_tree(tar, fd, rebase)
    finally:
        os.close(fd)


def archive_name(path: str) -> str:
    """The name the archive's top entry gets: the path's base name, `.` for its contents."""
    if path.endswith("/.") or path in ("/", ""):
        return "."
    return posixpath.basename(path.rstrip("/"))


def extract_tar(root: Root, dest: str, container: str, source: BinaryIO,
                no_overwrite_dir_non_dir: bool = False) -> None:
    """Unpack `source` into directory `dest` of the container, nothing leaving the root."""
    fd = _open_entry(root, dest, container, follow=True)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISDIR(st.st_mode):
        raise BadRequest("extraction point is not a directory")
    dest_rel = _resolved(root, dest)
    directories: list[tuple[str, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=source, mode="r|*") as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            parent_rel = posixpath.join(dest_rel, posixpath.dirname(name))
            base = posixpath.basename(name)
            try:
                _extract_member(root, dest_rel, tar, member, parent_rel, base,
                                no_overwrite_dir_non_dir)
            except OSError as exc:
                raise _failed(member.name, exc) from None
            if member.isdir():
                directories.append((posixpath.join(parent_rel, base), member))
    for path, member in reversed(directories):  # after their contents changed their mtimes
        try:
            parent, base = root.parent(path)
            try:
                _set_attributes(parent, base, member)
            finally:
                os.close(parent)
        except OSError as exc:
            raise _failed(member.name, exc) from None


def _failed(name: str, exc: OSError) -> ApiError:
    """A member that could not be made (a parent gone or not a directory, a full disk), in
    Go's words for the errno, with the member's name and no host path."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return ApiError(f"error extracting {name}: {reason}", 500)


def _extract_member(root: Root, dest_rel: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
                    parent_rel: str, base: str, no_overwrite_dir_non_dir: bool) -> None:
    """One member made in its parent, resolved inside the root (missing parents made); its
    attributes at once unless it is a directory (those wait for their contents)."""
    parent = root.makedirs(parent_rel, 0o777)
    try:
        _check_overwrite(parent, base, member, no_overwrite_dir_non_dir)
        _create(root, dest_rel, tar, member, parent, base)
        if not member.isdir():
            _set_attributes(parent, base, member)
    finally:
        os.close(parent)


def _check_overwrite(parent: int, name: str, member: tarfile.TarInfo, refuse: bool) -> None:
    existing = rootfd.lstat_at(parent, name) if refuse else None
    if existing is None:
        return
    existing_dir = stat.S_ISDIR(existing.st_mode)
    if existing_dir and not member.isdir():
        raise BadRequest(f"cannot overwrite directory {name!r} with non-directory")
    if member.isdir() and not existing_dir:
        raise BadRequest(f"cannot overwrite non-directory {name!r} with directory")


def _create(root: Root, dest_rel: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
            parent: int, name: str) -> None:
    """The entry `name` in the directory fd `parent`: whatever is there goes first, except a
    directory when the entry is one too (tar merges)."""
    existing = rootfd.lstat_at(parent, name)
    if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
        rootfd.remove_at(parent, name)
    if member.isdir():
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        except FileExistsError:
            pass
    elif member.isreg():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(tar.extractfile(member), out)  # type: ignore[arg-type]
    elif member.issym():
        os.symlink(member.linkname, name, dir_fd=parent)
    elif member.islnk():
        linked = posixpath.normpath("/" + member.linkname).lstrip("/")
        source_parent, source_name = root.parent(posixpath.join(dest_rel, linked))
        try:
            os.link(source_name, name, src_dir_fd=source_parent, dst_dir_fd=parent,
                    follow_symlinks=False)
        finally:
            os.close(source_parent)
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
        os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
    else:
        raise BadRequest(f"unsupported tar entry type for {member.name}")


def _set_attributes(parent: int, name: str, member: tarfile.TarInfo) -> None:
    """Owner, mode and mtime from the archive, as Docker keeps them (symlinks: owner only,
    hard links: nothing, they share the inode of their target)."""
    if member.islnk():
        return
    owner = (member.uid, member.gid)
    if member.issym():
        rootfd.set_attributes(parent, name, owner, None, None)
    else:
        rootfd.set_attributes(parent, name, owner, member.mode & 0o7777,
                              round(member.mtime * 1_000_000_000))
