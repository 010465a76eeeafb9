"""Terminal handling and hijacked-stream I/O for attach, `run -it` and `exec -it`.

The docker CLI copies stdin to the hijacked socket and the socket to stdout/stderr at the same
time, half-closing the socket when stdin ends (or at once without -i) so the daemon can close
the process's stdin. Without a tty the stream is stdcopy-framed and must be demultiplexed. With a
tty the input is scanned for the detach keys (docker's escape proxy): they are not sent, and the
connection is closed with the process left running.
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import threading
from types import FrameType
from typing import BinaryIO, Callable, Iterator

from tether.cli.client import CliError, Hijacked
from tether.rules.detachkeys import DEFAULT, EscapeScanner

_STREAM_ERROR = 3


class RawTerminal:
    """Context manager putting a terminal in raw mode and always restoring it.

    Restoring also happens on SIGTERM/SIGHUP (turned into SystemExit) so a killed CLI does not
    leave the user's shell without echo.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list | None = None  # type: ignore[type-arg]
        self.old_handlers: dict[int, object] = {}

    def __enter__(self) -> "RawTerminal":
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd, termios.TCSANOW)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.old_handlers[sig] = signal.signal(sig, _exit_on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        import termios

        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        for sig, handler in self.old_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def terminal_size(fd: int) -> tuple[int, int]:
    """(rows, cols) of the terminal on `fd`, (0, 0) when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return (0, 0)
    return (size.lines, size.columns)


def watch_resize(fd: int, send: Callable[[int, int], None]) -> Callable[[], None]:
    """Send the size now and on every SIGWINCH; returns a function that stops watching."""
    def resize(signum: int = 0, frame: FrameType | None = None) -> None:
        rows, cols = terminal_size(fd)
        if rows and cols:
            try:
                send(rows, cols)
            except (CliError, OSError):
                pass  # docker ignores failed resizes after the first few tries

    resize()
    previous = signal.signal(signal.SIGWINCH, resize)
    return lambda: signal.signal(signal.SIGWINCH, previous)


def demux(read: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    """Split a stdcopy stream into (stream, payload); stream 0 counts as stdout."""
    while True:
        header = _read_exact(read, 8)
        if not header:
            return
        stream, size = header[0], struct.unpack(">I", header[4:])[0]
        payload = _read_exact(read, size)
        if stream == _STREAM_ERROR:
            raise CliError(f"error from daemon in stream: {payload.decode(errors='replace')}")
        if stream not in (0, 1, 2):
            raise CliError(f"Unrecognized input header: {stream}")
        yield (stream or 1, payload)


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        block = read(n - len(data))
        if not block:
            if data:
                raise CliError("unexpected EOF in multiplexed stream")
            return b""
        data += block
    return data


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class StreamPump:
    """Copy stdin to a hijacked socket and its output to stdout/stderr until the output ends."""

    def __init__(self, conn: Hijacked, tty: bool, stdin: BinaryIO | None,
                 stdout_fd: int = 1, stderr_fd: int = 2, detach_keys: bytes = DEFAULT) -> None:
        self.conn = conn
        self.scanner = EscapeScanner(detach_keys) if tty else None
        self.tty = tty
        self.stdin = stdin
        self.out_fds = {1: stdout_fd, 2: stderr_fd}
        self.detached = False
        self.error: BaseException | None = None
        self._pending = conn.initial

    def _recv(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        try:
            return self.conn.sock.recv(n)
        except OSError:
            if self.detached:
                return b""
            raise

    def _output(self) -> None:
        try:
            if self.tty:
                while data := self._recv(65536):
                    write_all(self.out_fds[1], data)
            else:
                for stream, payload in demux(self._recv):
                    write_all(self.out_fds[stream], payload)
        except BaseException as exc:  # reported by run() in the main thread
            self.error = exc

    def _input(self) -> None:
        assert self.stdin is not None
        fd = self.stdin.fileno()
        try:
            while data := os.read(fd, 4096):
                detached = False
                if self.scanner is not None:
                    data, detached = self.scanner.feed(data)
                if data:
                    self.conn.sock.sendall(data)
                if detached:
                    self.detached = True
                    self.conn.sock.shutdown(socket.SHUT_RDWR)
                    return
            self.conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the output side ended first and closed the socket

    def run(self) -> None:
        """Block until the output stream ends; raise what the output side hit."""
        if self.stdin is None:
            self.conn.sock.shutdown(socket.SHUT_WR)
        else:
            threading.Thread(target=self._input, daemon=True).start()
        reader = threading.Thread(target=self._output, daemon=True)
        reader.start()
        while reader.is_alive():
            reader.join(0.2)
        self.conn.sock.close()
        if self.error is not None:
            raise self.error
