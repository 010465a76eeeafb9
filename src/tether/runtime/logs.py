"""Read conmon's k8s-file container logs.

Each line is `TIMESTAMP STREAM TAG DATA`: STREAM is `stdout` or `stderr`, TAG is `F` for the end of
an output line (its newline was consumed as the record separator) or `P` for a partial chunk (conmon
flushes what it has when its buffer fills or the output pauses without a newline). Docker's log
entries are whole lines, so readers join partials; an unterminated last chunk stays unterminated.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

_STREAMS = {b"stdout": 1, b"stderr": 2}
_FOLLOW_INTERVAL = 0.05


def parse_line(line: bytes) -> tuple[str, int, bytes, bool]:
    """(timestamp, stream 1|2, data, partial) of one record, without its trailing newline."""
    if line.endswith(b"\n"):
        line = line[:-1]
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS or parts[2] not in (b"F", b"P"):
        raise ValueError(f"not a k8s-file log line: {line[:80]!r}")
    data = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), _STREAMS[parts[1]], data, parts[2] == b"P"


class _Joiner:
    """Joins partial records per stream into whole entries, keeping the first chunk's timestamp."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[str, bytes]] = {}

    def feed(self, line: bytes) -> tuple[str, int, bytes] | None:
        timestamp, stream, data, partial = parse_line(line)
        first_ts, held = self._pending.pop(stream, (timestamp, b""))
        if partial:
            self._pending[stream] = (first_ts, held + data)
            return None
        return first_ts, stream, held + data + b"\n"

    def flush(self) -> list[tuple[str, int, bytes]]:
        """The unterminated chunks left when the output ended, oldest first."""
        rest = sorted(((ts, stream, data) for stream, (ts, data) in self._pending.items()),
                      key=lambda entry: entry[0])
        self._pending.clear()
        return rest


def _entries(lines: Iterable[bytes], joiner: _Joiner) -> Iterator[tuple[str, int, bytes]]:
    for line in lines:
        entry = joiner.feed(line)
        if entry is not None:
            yield entry


def read_log(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """Every entry of a log file, partial records joined; a missing file has no entries."""
    joiner = _Joiner()
    try:
        with open(path, "rb") as f:
            yield from _entries(f, joiner)
    except FileNotFoundError:
        return
    yield from joiner.flush()


async def follow_log(path: Path, done: Callable[[], bool]) -> AsyncIterator[tuple[str, int, bytes]]:
    """Existing entries, then new ones as they are written, until `done()` and the file is drained.

    `done` is checked before a final read, so output written just before the container exited is
    never lost. The file is polled: conmon offers no notification, and inotify has no asyncio binding
    in the standard library.
    """
    joiner = _Joiner()
    buffered = b""
    offset = 0
    inode = None
    while True:
        finished = done()
        chunk, now = _read_from(path, offset, inode)
        if now != inode:  # conmon started the file anew (--log-size-max): read it from 0
            inode, offset = now, 0
        offset += len(chunk)
        buffered += chunk
        *complete, buffered = buffered.split(b"\n")
        for entry in _entries(complete, joiner):
            yield entry
        if finished:
            for entry in joiner.flush():
                yield entry
            return
        if not chunk:
            await asyncio.sleep(_FOLLOW_INTERVAL)


def _read_from(path: Path, offset: int, inode: int | None) -> tuple[bytes, int | None]:
    """What the file at `path` holds from `offset` on, and its inode; a file that is not the
    one read so far (another inode) is read from its start."""
    try:
        with open(path, "rb") as f:
            now = os.fstat(f.fileno()).st_ino
            f.seek(offset if now == inode else 0)
            return f.read(), now
    except FileNotFoundError:
        return b"", inode
