"""Files under a root the daemon does not trust (a container's, a build's), reached by fds only.

A container's root is a host directory whose contents its processes control and may change at
any moment: a path string built from it and handed to the kernel later can meet a symlink the
container swapped in meanwhile, and the kernel would follow it out to the host. So every path
here is resolved once by `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` relative to an fd of
the root (symlinks, `..` and absolute targets then stay inside it, as the container sees them),
and everything after works on the fd it gave: `*at` calls on a parent fd with the entry's own
name never followed, fds opened O_NOFOLLOW, directories listed through their fds. A race then can
only move an operation to another place inside the same root, which the container could write
anyway. Running containers are reached through an fd of /proc/<pid>/root, which is the root of
their mount namespace: their volumes and binds are seen there and crossed like any directory.
"""
from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterator

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number on every architecture (the syscall came after the unified table)
_EAGAIN_TRIES = 128  # openat2 answers EAGAIN when a rename raced a `..`: worth asking again
MAX_LINKS = 255  # symlinks followed in one resolution, Docker's limit

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0) -> int:
    """An fd of `path` resolved inside the directory `dirfd` as if it were `/` (O_CLOEXEC
    added). Raises OSError with the errno (ENOENT, ENOTDIR, ELOOP, EEXIST...)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    raw = os.fsencode(path or ".")
    for _ in range(_EAGAIN_TRIES):
        fd = _libc.syscall(_SYS_OPENAT2, dirfd, raw, ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.EAGAIN, errno.EINTR):
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)


def reopen(fd: int, flags: int) -> int:
    """A new open file of the very inode an O_PATH fd holds (through our own /proc/self/fd,
    not a path inside the root), so it is never re-resolved."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


def open_regular(fd: int) -> int:
    """A read fd of the regular file an O_PATH fd holds; anything else (a device node or fifo
    swapped in) is refused before it is opened."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    return reopen(fd, os.O_RDONLY)


def getxattr(fd: int, name: str) -> bytes | None:
    """An extended attribute of the inode an O_PATH fd holds (not a symlink: there is no
    fgetxattr for O_PATH fds, so through our own /proc/self/fd), None when it has none."""
    try:
        return os.getxattr(f"/proc/self/fd/{fd}", name)
    except OSError:
        return None


def read_link(fd: int) -> str:
    """The target of the symlink an O_PATH|O_NOFOLLOW fd holds (readlinkat with an empty name)."""
    return os.readlink("", dir_fd=fd)


def split(path: str) -> tuple[str, str]:
    """A container path's parent and last component (`..` and `.` normalised away, so that the
    last component is a real name, or "" for the root itself)."""
    clean = posixpath.normpath("/" + path)
    return posixpath.dirname(clean), posixpath.basename(clean)


def resolve_path(path: str, readlink: Callable[[str], str | None], follow_last: bool = True) -> str:
    """The container path `path` leads to, symlinks resolved as the container sees them:
    `readlink(container_path)` gives a link's target or None. `..` stops at `/`, absolute
    targets restart there. With `follow_last=False` a symlink as the last component stays."""
    pending = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        target = readlink("/" + "/".join([*resolved, part])) if pending or follow_last else None
        if target is None:
            resolved.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        if target.startswith("/"):
            resolved = []
        pending = [p for p in target.split("/") if p not in ("", ".")] + pending
    return "/" + "/".join(resolved)


class Root:
    """A root directory held by an O_PATH fd; paths given to its methods are container paths."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, path: Path) -> Root:
        """The root at a host path the daemon owns (a mounted overlay, a context directory) or
        /proc/<pid>/root, whose magic link is followed here, once, to the container's root."""
        return cls(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_at(self, path: str, flags: int, mode: int = 0) -> int:
        return openat2(self.fd, path, flags, mode)

    def lstat(self, path: str) -> os.stat_result:
        """lstat of a container path (the last component not followed)."""
        fd = self.open_at(path, os.O_PATH | os.O_NOFOLLOW)
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def readlink(self, path: str) -> str | None:
        """A symlink's target, None when `path` is no symlink or does not exist."""
        try:
            fd = self.open_at(path, os.O_PATH | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return read_link(fd) if stat.S_ISLNK(os.fstat(fd).st_mode) else None
        finally:
            os.close(fd)

    def regular_file(self, path: str, follow_last: bool = True) -> int | None:
        """An O_PATH fd of `path` when it is a regular file, None when it is missing, of
        another type, or (with `follow_last=False`) a symlink. The caller closes the fd."""
        try:
            fd = self.open_at(path, os.O_PATH | (0 if follow_last else os.O_NOFOLLOW))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)
        return None

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """The container path `path` leads to (a name for messages and later in-root opens:
        never a host path)."""
        return resolve_path(path, self.readlink, follow_last)

    def parent(self, path: str) -> tuple[int, str]:
        """An O_PATH fd of `path`'s parent directory and its last component, for `*at` calls
        on the entry itself. The caller closes the fd."""
        parent, name = split(path)
        return self.open_at(parent, os.O_PATH | os.O_DIRECTORY), name

    def makedirs(self, path: str, mode: int = 0o755,
                 owner: tuple[int, int] | None = None) -> int:
        """An O_PATH fd of directory `path`, its missing components made (mkdirat in the fd of
        the one before, `mode`, chowned to `owner` if given). The caller closes the fd."""
        try:
            return self.open_at(path, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            pass
        fd = self.open_at("/", os.O_PATH | os.O_DIRECTORY)
        current = "/"
        try:
            for part in [p for p in posixpath.normpath("/" + path).split("/") if p]:
                current = posixpath.join(current, part)
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                    if owner is not None:
                        os.chown(part, *owner, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
                os.close(fd)
                fd = -1
                fd = self.open_at(current, os.O_PATH | os.O_DIRECTORY)  # links followed in root
            return fd
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise


def lstat_at(dirfd: int, name: str) -> os.stat_result | None:
    """lstat of `name` in a directory fd, None when it is not there."""
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dirfd: int, name: str) -> None:
    """Remove `name` from a directory fd, a directory with all it holds (by fds: shutil's
    dir_fd walk never follows a symlink)."""
    st = lstat_at(dirfd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


def set_attributes(dirfd: int, name: str, owner: tuple[int, int] | None, mode: int | None,
                   mtime_ns: int | None, atime_ns: int | None = None) -> None:
    """Owner, then mode, then times of `name` in a directory fd, never through a symlink:
    a symlink gets owner and times (lchown, utimensat AT_SYMLINK_NOFOLLOW), anything else has
    them set on an O_PATH|O_NOFOLLOW fd of it through our own /proc/self/fd (the kernel has no
    fchmod for O_PATH fds, and opening a device node to get a real fd could act on a device)."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        times = None if mtime_ns is None else (mtime_ns if atime_ns is None else atime_ns, mtime_ns)
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            if owner is not None:
                os.chown(name, *owner, dir_fd=dirfd, follow_symlinks=False)
            if times is not None:
                os.utime(name, ns=times, dir_fd=dirfd, follow_symlinks=False)
            return
        inode = f"/proc/self/fd/{fd}"
        if owner is not None:
            os.chown(inode, *owner)
        if mode is not None:
            os.chmod(inode, mode)
        if times is not None:
            os.utime(inode, ns=times)
    finally:
        os.close(fd)


def walk(fd: int, rel: str) -> Iterator[tuple[str, os.stat_result, int]]:
    """(name, lstat, O_PATH fd) of the entry an O_PATH|O_NOFOLLOW `fd` holds, named `rel`, and
    of everything below it when it is a directory: depth first, names in byte order, children named
    `rel/child`. Each fd is valid until the next item is asked for; directories are listed
    through fds of their own, so nothing is looked up by a path."""
    st = os.fstat(fd)
    yield rel, st, fd
    if not stat.S_ISDIR(st.st_mode):
        return
    listing = reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = sorted((entry.name for entry in os.scandir(listing)), key=os.fsencode)
        for name in names:
            try:
                child = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=listing)
            except FileNotFoundError:  # removed since it was listed
                continue
            try:
                yield from walk(child, f"{rel}/{name}" if rel else name)
            finally:
                os.close(child)
    finally:
        os.close(listing)
