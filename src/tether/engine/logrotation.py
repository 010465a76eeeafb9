"""json-file's rotation with more than one file (`--log-opt max-size=.. --log-opt max-file=N`).

conmon writes the log and can only start it anew (losing what it held), so the daemon rotates:
while the container runs it looks at the file's size every `INTERVAL`; once it has reached
max-size the files are shifted (runtime/logs.py `rotate`) and conmon is told to reopen its path.
conmon keeps writing to the moved file until then, so no line is lost; a file can pass max-size
by what the container writes within one interval, where dockerd's writer is exact.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable

from tether.engine.records import Container
from tether.rules import log_options
from tether.rules.errors import ApiError
from tether.runtime.logs import rotate

INTERVAL = 0.1
log = logging.getLogger("tether.logs")


def for_run(c: Container, path: Path, reopen: Callable[[], Awaitable[None]],
            exited: asyncio.Event) -> Awaitable[None] | None:
    """The rotation of a run that starts now (`rotate_while_running`), or None when its log
    options keep one file (conmon's own size limit) or none."""
    logging_ = c.host_config.log_config
    try:
        size, files = log_options.limits(logging_.type, logging_.config)
    except ApiError:  # a record older than these checks: its log is left as conmon writes it
        return None
    if not size or files <= 1:
        return None
    return rotate_while_running(path, size, files, reopen, lambda: c.state.running, exited)


async def rotate_while_running(path: Path, max_size: int, max_files: int,
                               reopen: Callable[[], Awaitable[None]],
                               running: Callable[[], bool], exited: asyncio.Event) -> None:
    """Rotate `path` at `max_size` keeping `max_files` files, until `exited` is set; never once
    the process has ended (its last lines stay in the current file)."""
    while not exited.is_set():
        try:
            if running() and path.stat().st_size >= max_size:
                await asyncio.to_thread(rotate, path, max_files)
                await reopen()
        except FileNotFoundError:
            pass  # conmon has not made it yet, or is making it anew
        except OSError:
            log.exception("log rotation failed", extra={"ctx": {"path": path.name}})
        try:
            await asyncio.wait_for(exited.wait(), INTERVAL)
        except asyncio.TimeoutError:
            pass
