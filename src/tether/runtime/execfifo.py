"""Let a created container's process run, as `runc start` does, without a runc process.

After `runc create`, runc's init waits in the container, blocked opening runc's `exec.fifo`
(`<runc root>/<id>/exec.fifo`) for writing; `runc start` does nothing but open that fifo for
reading, read it to its end (init writes one byte, then its copy closes when it execs the
user's command) and remove it, which is what makes runc call the container running from then
on (runc 1.1, libcontainer's linuxContainer.exec). Spawning runc for that costs a Go process
start, 8 ms of every `docker start`; this does the same steps on the daemon's event loop.

While waiting, runc checks every 100 ms whether init has died; here a pidfd of init wakes the
loop instead. The error texts are runc's.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

FIFO = "exec.fifo"
_CHUNK = 64


def pidfd(pid: int) -> int:
    """A pidfd of `pid`, -1 when no such process is left. Opened before the caller checks that
    `pid` is still the container's init (runc's start time in its state), so that the pidfd
    cannot name a process that took the pid over after init died."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return -1


async def release(container_dir: Path, init: int) -> None:
    """Open, drain and remove runc's exec fifo of the created container in `container_dir`
    (its runc state directory); `init` is a pidfd of its init (`pidfd`, -1: gone). Raises
    RuntimeError with runc's text when the process is already running or has died."""
    path = container_dir / FIFO
    try:  # non-blocking: the open itself lets init's open for writing go on
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RuntimeError("cannot start an already running container") from None
    try:
        data = await _drain(fd, init)
    finally:
        os.close(fd)
    if not data:
        raise RuntimeError("cannot start an already running container")
    os.unlink(path)


async def _drain(fd: int, init: int) -> bytes:
    """Everything written to the fifo until its writer is gone. A fifo nobody has opened for
    writing yet is not readable (Linux reports no hang-up before a first writer), so the reader
    wakes only for init's byte or its close; init's death wakes its pidfd."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    received = bytearray()

    def readable() -> None:
        while not done.done():
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            if not chunk:
                done.set_result(bytes(received))
            received.extend(chunk)

    def died() -> None:
        """init is gone, so is its end of the fifo: what it wrote before counts (it may have
        exec'ed and ended between two wake-ups), nothing written means it never got there."""
        if done.done():
            return
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, _CHUNK):
                received.extend(chunk)
        if received:
            done.set_result(bytes(received))
        else:
            done.set_exception(RuntimeError("container process is already dead"))

    loop.add_reader(fd, readable)
    if init >= 0:
        loop.add_reader(init, died)
    else:
        loop.call_soon(died)
    try:
        return await done
    finally:
        loop.remove_reader(fd)
        if init >= 0:
            loop.remove_reader(init)
