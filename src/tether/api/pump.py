"""Copying between a hijacked client connection and a process's stdio (attach and exec).

Output is framed (stdcopy) unless the process has a tty. The client's half-close means "close the
process's stdin", never "stop": the output keeps flowing until the process closes it, and only
then is the connection closed.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from tether.api.http import HijackedConn
from tether.api.streams import frame


class Stdio(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...


async def pump(conn: HijackedConn, stdio: Stdio, *, tty: bool, stdin: bool,
               streams: frozenset[int] = frozenset({1, 2})) -> bool:
    """Copy until the process's output ends; True if it ended, False if the client went away."""

    async def copy_in() -> None:
        while data := await conn.read(65536):
            if stdin:
                await stdio.write(data)
        if stdin:
            await stdio.close_stdin()

    reader = asyncio.create_task(copy_in())
    try:
        while (item := await stdio.read()) is not None:
            stream, data = item
            if stream not in streams:
                continue
            try:
                await conn.write(data if tty else frame(stream, data))
            except (ConnectionError, OSError):
                return False
        return True
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await reader
