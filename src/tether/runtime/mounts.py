"""Overlay mounts for container root filesystems, through mount(2)/umount2(2) directly.

Calling the syscalls through ctypes costs microseconds where spawning mount(8) costs milliseconds,
and container start latency is a benchmark target.
"""
from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

MNT_DETACH = 2
MS_BIND = 4096
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _unescape(field: str) -> str:
    """Undo the octal escapes (\\040 for a space...) that /proc/self/mountinfo uses."""
    return field.encode().decode("unicode_escape").encode("latin-1").decode()


def is_mounted(target: Path) -> bool:
    """True when something is mounted exactly at `target` in this mount namespace."""
    wanted = os.path.realpath(target)
    with open("/proc/self/mountinfo") as mountinfo:
        return any(_unescape(line.split(" ", 5)[4]) == wanted for line in mountinfo)


def _check(result: int, what: str, target: Path) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} {target}: {os.strerror(err)}")


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
    _check(_libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options.encode()),
           "mount overlay on", target)


def bind_mount(source: Path, target: Path) -> None:
    """Bind `source` onto `target` (which must exist). The caller checks that `target` leads
    nowhere else: mount(2) follows symlinks."""
    _check(_libc.mount(str(source).encode(), str(target).encode(), None, MS_BIND, None),
           "bind mount on", target)


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
