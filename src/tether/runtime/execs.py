"""Exec sessions: `runc exec` as a child of the daemon, wired straight to the client's stream.

Execs do not need to survive a daemon restart (Docker's don't either), so no conmon is involved.

Without a tty, runc stays in the foreground and hands its own stdio to the process, so the pipes
made here reach the process directly; runc exits with the process's status (128+N when killed by
signal N).

With a tty, the daemon holds the container terminal's master itself, as Docker's shim does: the
terminal then keeps the termios of a new pty (onlcr, icrnl, echo...), so output and typed input
translate exactly as in Docker. (runc in the foreground would instead copy between the container's
terminal and its own, clearing onlcr on the container's.) runc gives the master away only when it
runs detached (`--console-socket`), so it runs under exec_reaper.py, the subreaper that waits for
the orphaned process and exits with its status. The size is set on the master: the kernel signals
the terminal's foreground process group, as for any terminal.

When runc cannot start the process (not found, not executable) it exits 255 with its error as a
JSON log line on stderr; the session then ends as Docker's does: exit code 126 and the message
`OCI runtime exec failed: <runc's error>: unknown` on the output stream.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import termios
from pathlib import Path

from tether.rules.errors import exec_start_failure, runc_exec_error

_READ_SIZE = 65536
_EOT = b"\x04"
_REAPER = str(Path(__file__).with_name("exec_reaper.py"))
_RUNC_FAILED = 255
_EXEC_FAILED = 126  # dockerd's exit code for an exec whose process could not be started
# the start of runc's JSON error line; only the first stderr output, before any stdout, is held
_RUNC_ERROR_START = b'{"level":"error","msg":"exec failed: '


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
    """One running exec; read/write/close_stdin talk to the process, wait gives its code.

    `proc` is runc (no tty) or exec_reaper (tty, `master` the container terminal's master, None
    when runc failed before sending it). Output ends only after `proc` has exited, so that a
    start failure's message is the last output chunk."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None, tty: bool,
                 session: Path) -> None:
        self._proc = proc
        self._master = master
        self._tty = tty
        self._session = session  # runc's pid file, a tty's console socket: removed at the end
        self.pid = proc.pid
        self._output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._open_streams = 0
        # no tty: the first stderr, while it may be runc's error line rather than the process's
        self._held_stderr: bytes | None = None if tty else b""
        self._code: int | None = None
        self._tasks: list[asyncio.Task] = []
        if not tty:
            assert proc.stdout is not None and proc.stderr is not None
            self._pump(1, proc.stdout)
            self._pump(2, proc.stderr)
        elif master is not None:
            self._open_streams += 1
            asyncio.get_running_loop().add_reader(master, self._on_master_readable)
        if self._open_streams == 0:
            self._streams_ended()

    def _pump(self, stream: int, reader: asyncio.StreamReader) -> None:
        self._open_streams += 1
        self._tasks.append(asyncio.get_running_loop().create_task(self._copy(stream, reader)))

    async def _copy(self, stream: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(_READ_SIZE):
            if self._held_stderr is not None:  # runc's error may still be coming
                if stream == 2:
                    self._held_stderr += data
                    if (self._held_stderr.startswith(_RUNC_ERROR_START)
                            or _RUNC_ERROR_START.startswith(self._held_stderr)):
                        continue
                    stream, data = 2, self._held_stderr
                else:  # the process runs: whatever was held is its own
                    await self._release_stderr()
                self._held_stderr = None
            await self._output.put((stream, data))
        self._stream_closed()

    async def _release_stderr(self) -> None:
        if self._held_stderr:
            await self._output.put((2, self._held_stderr))
        self._held_stderr = None

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0:
            self._streams_ended()

    def _streams_ended(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._finish()))

    async def _finish(self) -> None:
        """The process is gone: its status, and runc's error in place of output if it failed."""
        runc_stderr = b""
        if self._tty:
            assert self._proc.stderr is not None
            runc_stderr = await self._proc.stderr.read()
        code = exit_status(await self._proc.wait())
        held = self._held_stderr or b""
        started = (self._session / "pid").exists()
        error = (runc_exec_error((runc_stderr or held).decode(errors="replace"))
                 if code == _RUNC_FAILED and not started else None)
        if error is not None:
            code = _EXEC_FAILED
            self._held_stderr = None
            self._output.put_nowait((1, exec_start_failure(error).encode() + b"\r\n"))
        await self._release_stderr()
        self._code = code
        self._output.put_nowait(None)
        if self._master is not None:
            os.close(self._master)
            self._master = None
        _remove_session(self._session)

    def _on_master_readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave side is closed, the process is gone
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
        if self._tty:
            if self._master is not None:
                await _write_fd(self._master, data)
            return
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except ConnectionResetError:  # the process is gone; its end is reported by wait
            pass

    async def close_stdin(self) -> None:
        """End of input: close the pipe, or type end-of-file (^D) on a terminal."""
        if self._tty:
            await self.write(_EOT)
            return
        assert self._proc.stdin is not None
        if not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    async def wait(self) -> int:
        """The exit code, once the output has ended (126 when the process could not start)."""
        while await self.read() is not None:  # unread output is dropped, as a detached exec's
            pass
        assert self._code is not None
        return self._code

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
        if self._master is not None:
            _set_size(self._master, height, width)


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


def clear_sessions(work_dir: Path) -> None:
    """Remove the session directories an earlier daemon left (killed before its execs ended):
    an exec never outlives the daemon's stream of it, so none of them is in use."""
    shutil.rmtree(work_dir, ignore_errors=True)


async def start_exec(runc: str, root: str, cid: str, process: dict, work_dir: Path) -> ExecProcess:
    """Start `process` (an OCI process dict) in container `cid` and return its session. runc's
    pid file (and a tty's console socket) live in a new directory under `work_dir`: runc writes
    the pid file only once the process runs, which tells its failure from the process's own."""
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    session = Path(tempfile.mkdtemp(dir=work_dir))
    spec_fd = _process_pipe(process)
    runc_argv = [runc, "--root", root, "--log-format", "json", "exec",
                 "--process", f"/dev/fd/{spec_fd}", "--pid-file", str(session / "pid")]
    try:
        if process.get("terminal"):
            return await _start_tty(runc_argv, cid, spec_fd, session)
        proc = await asyncio.create_subprocess_exec(
            *runc_argv, cid, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, pass_fds=(spec_fd,))
        return ExecProcess(proc, None, False, session)
    except BaseException:
        _remove_session(session)
        raise
    finally:
        os.close(spec_fd)


_SESSION_FILES = ("pid", "console")


def _remove_session(session: Path) -> None:
    """Remove a session directory: its two known files, then itself (rmtree, which opens and
    lists the directory, only if something else is there). Done once per exec."""
    for name in _SESSION_FILES:
        try:
            os.unlink(session / name)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(session)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(session, ignore_errors=True)


async def _start_tty(runc_argv: list[str], cid: str, spec_fd: int,
                     session: Path) -> ExecProcess:
    """runc detached under exec_reaper; the master comes over the console socket, unless runc
    fails first. The process spec's consoleSize sizes the terminal before the process runs."""
    console, pid_file = session / "console", session / "pid"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(console))
        listener.listen(1)
        listener.setblocking(False)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", _REAPER, str(pid_file), *runc_argv, "--detach",
            "--console-socket", str(console), cid,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, pass_fds=(spec_fd,))
        master = await _receive_master(listener, proc)
    finally:
        listener.close()
    if master is not None:
        os.set_blocking(master, False)
    return ExecProcess(proc, master, True, session)


async def _receive_master(listener: socket.socket,
                          proc: asyncio.subprocess.Process) -> int | None:
    """The master runc sends, or None when the reaper exits first (runc failed)."""
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(listener))
    exited = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({accept, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if not accept.done():
        accept.cancel()
        return None
    conn = accept.result()[0]
    with conn:
        readable = loop.create_future()
        loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(conn.fileno())
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    return fds[0] if fds else None
