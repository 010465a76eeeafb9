"""The attach/exec pump: what ends a session, and when the process's stdin is closed."""
from __future__ import annotations

import asyncio

from tether.api.pump import Outcome, pump


class FakeConn:
    """A client: the chunks it sends (then EOF), and what it received."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        for chunk in chunks:
            self.incoming.put_nowait(chunk)
        self.sent = b""

    def eof(self) -> None:
        self.incoming.put_nowait(b"")

    async def read(self, n: int) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        self.sent += data


class FakeStdio:
    def __init__(self) -> None:
        self.output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.written = b""
        self.stdin_closed = False

    async def read(self) -> tuple[int, bytes] | None:
        return await self.output.get()

    async def write(self, data: bytes) -> None:
        self.written += data

    async def close_stdin(self) -> None:
        self.stdin_closed = True


def test_tty_detach_keys_end_the_session_and_keep_stdin_open():
    async def scenario():
        conn, stdio = FakeConn([b"ls\n\x10", b"\x11ignored"]), FakeStdio()
        outcome = await pump(conn, stdio, tty=True, stdin=True)
        return outcome, stdio.written, stdio.stdin_closed
    assert asyncio.run(scenario()) == (Outcome.DETACHED, b"ls\n", False)


def test_custom_keys():
    async def scenario():
        conn, stdio = FakeConn([b"a\x10\x11b\x01x"]), FakeStdio()
        return await pump(conn, stdio, tty=True, stdin=True, detach_keys=b"\x01x"), stdio.written
    assert asyncio.run(scenario()) == (Outcome.DETACHED, b"a\x10\x11b")


def test_tty_client_eof_ends_the_session_without_closing_stdin():
    async def scenario():
        conn, stdio = FakeConn([b"echo\n"]), FakeStdio()
        conn.eof()
        return await pump(conn, stdio, tty=True, stdin=True), stdio.stdin_closed
    assert asyncio.run(scenario()) == (Outcome.GONE, False)


def test_without_tty_eof_closes_stdin_and_the_output_decides():
    async def scenario():
        conn, stdio = FakeConn([b"\x10\x11data"]), FakeStdio()
        conn.eof()
        task = asyncio.create_task(pump(conn, stdio, tty=False, stdin=True))
        await asyncio.sleep(0.01)
        assert not task.done() and stdio.stdin_closed
        stdio.output.put_nowait((1, b"out"))
        stdio.output.put_nowait(None)
        return await task, stdio.written, conn.sent
    outcome, written, sent = asyncio.run(scenario())
    assert (outcome, written) == (Outcome.ENDED, b"\x10\x11data")  # no keys without a tty
    assert sent == b"\x01\x00\x00\x00\x00\x00\x00\x03out"


def test_tty_without_stdin_ignores_input_until_the_output_ends():
    async def scenario():
        conn, stdio = FakeConn([b"\x10\x11"]), FakeStdio()
        conn.eof()
        task = asyncio.create_task(pump(conn, stdio, tty=True, stdin=False))
        await asyncio.sleep(0.01)
        stdio.output.put_nowait(None)
        return await task, stdio.written, stdio.stdin_closed
    assert asyncio.run(scenario()) == (Outcome.ENDED, b"", False)
