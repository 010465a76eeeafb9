"""Bodies written by blocking code: a worker thread writes into a pipe, the event loop sends what
comes out, chunk by chunk, so a large tar (cp, save, export) is never held in memory whole; or a
worker thread emits progress messages that go out as JSON lines (pull, push, load, import)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any, AsyncIterator, BinaryIO, Callable

from tether.api.http import StreamResponse
from tether.rules.errors import ApiError

CHUNK = 64 * 1024
log = logging.getLogger(__name__)
_DONE = object()


async def written_chunks(write: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """The bytes `write(out)` writes, as they come. Closing the read end (the client went away)
    makes the writer fail with EPIPE, so the thread always ends; its other errors are raised
    here once the bytes written before them have been sent."""
    read_fd, write_fd = os.pipe()
    writer_file = os.fdopen(write_fd, "wb")

    def produce() -> None:
        with contextlib.suppress(BrokenPipeError), writer_file:
            write(writer_file)
    producer = asyncio.create_task(asyncio.to_thread(produce))
    try:
        while chunk := await asyncio.to_thread(os.read, read_fd, CHUNK):
            yield chunk
    finally:
        os.close(read_fd)
        await producer


def error_line(message: str, code: int | None = None) -> dict[str, Any]:
    """dockerd's failure in a JSON stream: `errorDetail` (with the exit code of a build step
    whose command failed) and `error`, the shape the docker CLI and SDK raise from."""
    detail: dict[str, Any] = {"message": message} if code is None else {"code": code, "message": message}
    return {"errorDetail": detail, "error": message}


def progress_stream(work: Callable[[Callable[[dict[str, Any]], None]], Any]) -> StreamResponse:
    """Run `work(emit)` in a thread and stream what it emits as JSON lines, then its error if
    it failed (dockerd's `{"errorDetail": {"message": ...}, "error": ...}`): once a 200 has
    been sent, that line is how the docker CLI and SDK learn of a failure."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def emit(msg: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, msg)

    async def runner() -> None:
        try:
            await asyncio.to_thread(work, emit)
        except ApiError as exc:
            await queue.put(error_line(exc.message))
        except Exception as exc:  # an error line, not a dropped stream: the client shows it
            log.exception("streamed operation failed")
            await queue.put(error_line(str(exc)))
        finally:
            await queue.put(_DONE)

    task = loop.create_task(runner())

    async def body() -> AsyncIterator[bytes]:
        try:
            while (item := await queue.get()) is not _DONE:
                yield json.dumps(item, separators=(",", ":")).encode() + b"\r\n"
        finally:
            await task

    return StreamResponse(body(), "application/json")
