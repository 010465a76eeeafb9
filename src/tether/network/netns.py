"""Named network namespaces, made without spawning a process.

A container's network namespace is a file that runc joins by path, so the network manager can
set it up before the container starts and tear it down after it stops. Creating it costs one
thread: the thread unshares its own network namespace (namespaces are per thread on Linux),
brings `lo` up with an ioctl, and bind-mounts its namespace onto the file; the rest of the daemon
never leaves its own namespace.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Callable, TypeVar

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _bring_up(ifname: str) -> None:
    """Set IFF_UP on an interface of the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH22x", ifname.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", ifname.encode(), flags | IFF_UP))


def in_own_thread(work: Callable[[], T], name: str) -> T:
    """Run `work` in a short-lived thread and hand back its result or its exception. Namespaces
    are per thread on Linux: whatever namespace `work` enters or makes ends with the thread,
    and the daemon's other threads never leave their own."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def enter(ns_fd: int) -> None:
    """Move the calling thread into the network namespace open at `ns_fd`."""
    _check(_libc.setns(ns_fd, CLONE_NEWNET), "setns")


def create(path: Path, ipv6: bool = True) -> None:
    """Create a network namespace with `lo` up, pinned at `path`. Without `ipv6`, IPv6 is
    off in it before `lo` comes up, so `lo` has 127.0.0.1 only (Docker 20.10's `--network
    none` container: no ::1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)

    def work() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        if not ipv6:  # /proc/sys/net is the opening thread's namespace: this new one
            Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").write_text("1")
            Path("/proc/sys/net/ipv6/conf/default/disable_ipv6").write_text("1")
        _bring_up("lo")
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(_libc.mount(source, str(path).encode(), None, MS_BIND, None), "mount")

    try:
        in_own_thread(work, "netns-create")
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def remove(path: Path) -> None:
    """Unpin and delete a namespace file; nothing to do when it is already gone."""
    path = Path(path)
    if not path.exists():
        return
    _libc.umount2(str(path).encode(), MNT_DETACH)
    path.unlink(missing_ok=True)
