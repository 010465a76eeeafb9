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
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
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


def bind(source: Path, target: Path, read_only: bool, recursive: bool = True) -> None:
    """Bind `source` on `target` (both existing), private so that unmounting it later never
    propagates back to the source's own mounts; read-only needs a remount of the bind."""
    flags = MS_BIND | (MS_REC if recursive else 0)
    mount(str(source), target, "", flags, "", "bind mount on")
    try:
        mount("", target, "", MS_PRIVATE | MS_REC, "", "make private")
        if read_only:
            mount("", target, "", MS_BIND | MS_REMOUNT | MS_RDONLY, "", "remount read-only")
    except OSError:
        unmount(target)
        raise


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
