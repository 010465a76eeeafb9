"""Bodies written by blocking code: a worker thread writes into a pipe, the event loop sends what
comes out, chunk by chunk, so a large tar (cp, save, export) is never held in memory whole."""
from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator, BinaryIO, Callable

CHUNK = 64 * 1024


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
