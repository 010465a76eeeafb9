"""Exec sessions: `runc exec` as a child of the daemon, wired straight to the client's stream.

Execs do not need to survive a daemon restart (Docker's don't either), so no monitor process is
involved: runc stays in the foreground, forwards signals to the process and exits with its status
(128+N when the process was killed by signal N).

Without a tty, runc hands its own stdio to the process, so the pipes made here reach the process
directly. With a tty, runc allocates the container-side terminal itself and copies between it and
its own stdin/stdout, which here is the slave side of a pty whose master this module reads; runc
puts that terminal in raw mode and, on SIGWINCH, copies its size to the container's terminal, which
is how `resize` works.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import struct
import termios

_READ_SIZE = 65536
_EOT = b"\x04"


def exit_status(returncode: int) -> int:
    """Docker's exit code for a child's status: the code, or 128+N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _process_pipe(process: dict) -> int:
    """A pipe holding the process JSON, so runc can read `--process /dev/fd/N` without a file."""
    data = json.dumps(process).encode()
    r, w = os.pipe()
    try:
        if len(data) > fcntl.fcntl(w, fcntl.F_GETPIPE_SZ):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, len(data))
        os.write(w, data)
    finally:
        os.close(w)
    return r


class ExecProcess:
    """One running `runc exec`; read/write/close_stdin talk to the process, wait gives its code."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self._proc = proc
        self._master = master
        self.pid = proc.pid
        self._output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._open_streams = 0
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        if master is None:
            assert proc.stdout is not None and proc.stderr is not None
            self._pump(1, proc.stdout)
            self._pump(2, proc.stderr)
        else:
            self._watch_master()

    def _pump(self, stream: int, reader: asyncio.StreamReader) -> None:
        self._open_streams += 1
        self._tasks.append(asyncio.get_running_loop().create_task(self._copy(stream, reader)))

    async def _copy(self, stream: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(_READ_SIZE):
            await self._output.put((stream, data))
        self._stream_closed()

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0:
            self._output.put_nowait(None)
            self._closed.set()

    def _watch_master(self) -> None:
        assert self._master is not None
        self._open_streams += 1
        asyncio.get_running_loop().add_reader(self._master, self._on_master_readable)

    def _on_master_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave side is closed, the process and runc are gone
            data = b""
        if data:
            self._output.put_nowait((1, data))
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self._stream_closed()

    async def read(self) -> tuple[int, bytes] | None:
        """The next output chunk (1 stdout, 2 stderr; a tty has only 1), None once output ended."""
        item = await self._output.get()
        if item is None:
            self._output.put_nowait(None)  # later reads see the end too
        return item

    async def write(self, data: bytes) -> None:
        if self._master is not None:
            await _write_fd(self._master, data)
            return
        assert self._proc.stdin is not None
        self._proc.stdin.write(data)
        await self._proc.stdin.drain()

    async def close_stdin(self) -> None:
        """End of input: close the pipe, or type end-of-file (^D) on a terminal."""
        if self._master is not None:
            await self.write(_EOT)
            return
        assert self._proc.stdin is not None
        if not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    async def wait(self) -> int:
        code = exit_status(await self._proc.wait())
        if self._master is not None:
            await self._closed.wait()  # the terminal's last output is queued before it is closed
            os.close(self._master)
            self._master = None
        return code

    def kill(self) -> None:
        """SIGKILL the process in the container (a health probe past its timeout). runc
        forwards the signals it can catch, SIGKILL is not one: the process, runc's child, is
        killed itself, then runc exits with its status."""
        for pid in _children(self._proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def resize(self, height: int, width: int) -> None:
        if self._master is None:
            return
        _set_size(self._master, height, width)
        try:
            os.kill(self._proc.pid, signal.SIGWINCH)
        except ProcessLookupError:
            pass


def _children(pid: int) -> list[int]:
    """The child processes of `pid`, from every one of its threads' /proc children lists."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                children += [int(p) for p in fh.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return children


def _set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


async def _write_fd(fd: int, data: bytes) -> None:
    """Write all of `data` to a non-blocking fd, waiting for room with the event loop."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            ready = loop.create_future()
            loop.add_writer(fd, ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(fd)


async def start_exec(runc: str, root: str, cid: str, process: dict,
                     console_size: tuple[int, int] | None = None) -> ExecProcess:
    """Start `process` (an OCI process dict) in container `cid` and return its session."""
    spec_fd = _process_pipe(process)
    argv = [runc, "--root", root, "exec", "--process", f"/dev/fd/{spec_fd}", cid]
    try:
        if process.get("terminal"):
            return await _start_tty(argv, spec_fd, console_size)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, pass_fds=(spec_fd,))
        return ExecProcess(proc, None)
    finally:
        os.close(spec_fd)


async def _start_tty(argv: list[str], spec_fd: int,
                     console_size: tuple[int, int] | None) -> ExecProcess:
    """runc copies between its own terminal and the container's, sizing the container's from its
    own at start and on SIGWINCH: so the size is set on our side before runc starts."""
    master, slave = os.openpty()
    if console_size:
        _set_size(master, *console_size)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, pass_fds=(spec_fd,))
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return ExecProcess(proc, master)
