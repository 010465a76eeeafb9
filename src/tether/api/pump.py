"""Copying between a hijacked client connection and a process's stdio (attach and exec).

Output is framed (stdcopy) unless the process has a tty. Without a tty, the client's half-close
means "close the process's stdin", never "stop": the output keeps flowing until the process
closes it, and only then is the connection closed. With a tty, as in dockerd, the process's stdin
is never closed by a client: the end of the client's input ends the session instead, and the
input is scanned for the detach keys, which end it too (the process keeps running).
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import Protocol

from tether.api.http import HijackedConn
from tether.api.streams import frame
from tether.rules.detachkeys import EscapeScanner


class Stdio(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...


class Outcome(enum.Enum):
    ENDED = "ended"        # the process closed its output
    GONE = "gone"          # the client went away (or ended its tty input)
    DETACHED = "detached"  # the client typed the detach keys


async def pump(conn: HijackedConn, stdio: Stdio, *, tty: bool, stdin: bool,
               streams: frozenset[int] = frozenset({1, 2}),
               detach_keys: bytes | None = None) -> Outcome:
    """Copy until the process's output ends, the client leaves or detaches."""
    scanner = EscapeScanner(detach_keys) if tty and stdin else None

    async def copy_in() -> Outcome | None:
        """An outcome that ends the session, or None: the output alone decides from here."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await conn.read(65536):
                if not stdin:
                    continue
                if scanner is None:
                    await stdio.write(data)
                    continue
                data, detached = scanner.feed(data)
                if data:
                    await stdio.write(data)
                if detached:
                    return Outcome.DETACHED
            if scanner is not None:
                return Outcome.GONE
            if stdin:
                await stdio.close_stdin()
        return None

    async def copy_out() -> Outcome:
        while (item := await stdio.read()) is not None:
            stream, data = item
            if stream not in streams:
                continue
            try:
                await conn.write(data if tty else frame(stream, data))
            except (ConnectionError, OSError):
                return Outcome.GONE
        return Outcome.ENDED

    reader = asyncio.create_task(copy_in())
    writer = asyncio.create_task(copy_out())
    try:
        done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        if writer not in done and (outcome := reader.result()) is not None:
            return outcome
        return await writer
    finally:
        for task in (reader, writer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await task
