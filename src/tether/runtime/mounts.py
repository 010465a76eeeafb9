"""Filesystem mounts (container root overlays, binds, volumes' --opt mounts) through
mount(2)/umount2(2) directly: the engine's one binding of those syscalls.

Calling the syscalls through ctypes costs microseconds where spawning mount(8) costs milliseconds,
and container start latency is a benchmark target.
"""
from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

MNT_DETACH = 2
MS_PRIVATE = 1 << 18
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442  # the same on every arch
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _unescape(field: str) -> str:
    """Undo the octal escapes (\\040 for a space...) that /proc/self/mountinfo uses."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


class _Statx(ctypes.Structure):
    """The head of struct statx (the kernel writes 256 bytes: the rest is padding here)."""
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32),
                ("attributes", ctypes.c_uint64), ("nlink", ctypes.c_uint32),
                ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("mode", ctypes.c_uint16),
                ("spare0", ctypes.c_uint16), ("ino", ctypes.c_uint64), ("size", ctypes.c_uint64),
                ("blocks", ctypes.c_uint64), ("attributes_mask", ctypes.c_uint64),
                ("rest", ctypes.c_uint8 * 192)]


STATX_TYPE = 0x1
STATX_ATTR_MOUNT_ROOT = 0x2000  # Linux 5.8: the file is the root of a mount
_statx = getattr(_libc, "statx", None)  # glibc 2.28
if _statx is not None:
    _statx.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                       ctypes.POINTER(_Statx))


def _mount_root(target: Path) -> bool | None:
    """Is `target` (symlinks followed) the root of a mount, by statx's STATX_ATTR_MOUNT_ROOT;
    None when this kernel or libc cannot tell."""
    if _statx is None:
        return None
    buf = _Statx()
    if _statx(-100, os.fsencode(target), 0, STATX_TYPE, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        return False if err in (errno.ENOENT, errno.ENOTDIR) else None
    if not buf.attributes_mask & STATX_ATTR_MOUNT_ROOT:
        return None
    return bool(buf.attributes & STATX_ATTR_MOUNT_ROOT)


def is_mounted(target: Path) -> bool:
    """True when something is mounted exactly at `target` in this mount namespace.

    Asked of the file itself (statx) where the kernel can answer: /proc/self/mountinfo costs
    the kernel time in proportion to every mount of the host (tens of ms with a few hundred
    containers), and this is asked at every start and removal."""
    found = _mount_root(target)
    return found if found is not None else _in_mountinfo(target)


def _in_mountinfo(target: Path) -> bool:
    wanted = os.path.realpath(target)
    with open("/proc/self/mountinfo") as mountinfo:
        return any(_unescape(line.split(" ", 5)[4]) == wanted for line in mountinfo)


def source_mount(path: str) -> tuple[str, str]:
    """The mount point that holds `path` (symlinks resolved) and its mountinfo optional fields
    (`shared:N`, `master:N`...): the mount a bind of `path` propagates through."""
    real = os.path.realpath(path)
    found = ("", "")
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            target = _unescape(fields[4])
            inside = real == target or real.startswith(target.rstrip("/") + "/")
            if inside and len(target) >= len(found[0]):  # the later of two at one place is on top
                found = (target, " ".join(fields[6:fields.index("-")]))
    return found


def _check(result: int, what: str, target: Path) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} {target}: {os.strerror(err)}")


def mount(source: str, target: Path, fstype: str, flags: int, data: str,
          what: str = "mount on") -> None:
    """mount(2) itself; empty strings are passed as NULL (a remount or a propagation change has
    no source, type or data). Raises OSError with the errno, its message naming `what`."""
    _check(_libc.mount(source.encode() or None, str(target).encode(), fstype.encode() or None,
                       flags, data.encode() or None), what, target)


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of `lowers` (top layer first) with `upper` as its writable layer.

    Idempotent: an overlay already at `target` is left as it is, so a restarted daemon can call
    this for a container whose rootfs survived.
    """
    if is_mounted(target):
        return
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work}"
    mount("overlay", target, "overlay", 0, options, "mount overlay on")


def bind_at(source: Path, target: int, read_only: bool, recursive: bool = True) -> int:
    """Bind `source` (a path the daemon trusts) onto the directory or file an O_PATH fd
    `target` holds, and return an O_PATH fd of the new mount for `unmount_at`. The new mount
    API works on fds only (open_tree, mount_setattr, move_mount): a target inside a root a
    container controls is never looked up by a path, so a symlink swapped in cannot move the
    mount, and the bind is private (and read-only) before it is attached anywhere."""
    tree = _fd_call(_SYS_OPEN_TREE, "bind mount on", source, -100, os.fsencode(source),
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0))
    try:
        attr = _MountAttr(MOUNT_ATTR_RDONLY if read_only else 0, 0, MS_PRIVATE, 0)
        _fd_call(_SYS_MOUNT_SETATTR, "make private", source, tree, b"",
                 AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0), ctypes.byref(attr),
                 ctypes.sizeof(attr))
        _fd_call(_SYS_MOVE_MOUNT, "bind mount on", source, tree, b"", target, b"",
                 MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
    except BaseException:
        os.close(tree)
        raise
    return tree


def unmount_at(mount: int) -> None:
    """Unmount the mount `bind_at` returned (through our own /proc/self/fd, not a path in the
    root it is on; lazily if it is busy) and close its fd."""
    try:
        path = f"/proc/self/fd/{mount}".encode()
        if _libc.umount2(path, 0) != 0 and ctypes.get_errno() == errno.EBUSY:
            _check(_libc.umount2(path, MNT_DETACH), "lazy unmount", Path(path.decode()))
    finally:
        os.close(mount)


def _fd_call(number: int, what: str, target: Path, *args: object) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} {target}: {os.strerror(err)}")
    return int(result)


def unmount(target: Path) -> None:
    """Unmount `target`; nothing to do if it is not mounted; detach lazily if it is busy."""
    path = str(target).encode()
    while is_mounted(target):
        if _libc.umount2(path, 0) == 0:
            continue
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            _check(_libc.umount2(path, MNT_DETACH), "lazy unmount", target)
        elif err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"unmount {target}: {os.strerror(err)}")
        else:
            return
