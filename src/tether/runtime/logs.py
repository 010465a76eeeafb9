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
from typing import BinaryIO

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


def generations(path: Path) -> list[Path]:
    """The log's files, oldest first: the rotated ones (`<path>.N` .. `<path>.1`), then `path`."""
    rotated = []
    index = 1
    while (older := path.with_name(f"{path.name}.{index}")).exists():
        rotated.append(older)
        index += 1
    return [*reversed(rotated), path]


def rotate(path: Path, max_files: int) -> None:
    """json-file's rotation: the oldest file dropped, each `<path>.N` moved to N+1, the current
    file to `<path>.1`. The writer keeps its fd of the moved file until it is told to reopen,
    so nothing written meanwhile is lost."""
    if max_files < 2:
        return
    path.with_name(f"{path.name}.{max_files - 1}").unlink(missing_ok=True)
    for index in range(max_files - 2, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.rename(path.with_name(f"{path.name}.{index + 1}"))
    if path.exists():
        path.rename(path.with_name(f"{path.name}.1"))


def read_log(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """Every entry of a log (its rotated files first), partial records joined; a missing file
    has no entries."""
    joiner = _Joiner()
    files = _open_generations(path)
    try:
        for f in files:
            yield from _entries(f, joiner)
    finally:
        for f in files:
            f.close()
    yield from joiner.flush()


def _open_generations(path: Path) -> list[BinaryIO]:
    """The log's files opened oldest first. A rotation between listing and opening moves them:
    then they are listed again, so no file is skipped (an open file keeps its content)."""
    for _ in range(10):
        files: list[BinaryIO] = []
        parts = generations(path)
        for part in parts:
            f = _open(part)
            if f is None and part != path:  # moved meanwhile: start again
                break
            if f is not None:
                files.append(f)
        else:
            return files
        for f in files:
            f.close()
    return [f for f in (_open(p) for p in generations(path)) if f is not None]


async def follow_log(path: Path, done: Callable[[], bool]) -> AsyncIterator[tuple[str, int, bytes]]:
    """Existing entries, then new ones as they are written, until `done()` and the file is drained.

    `done` is checked before a final read, so output written just before the container exited is
    never lost. The file is polled: conmon offers no notification, and inotify has no asyncio binding
    in the standard library. The open file is read to its end before a new file at `path` (a
    rotation, or conmon starting the file anew at its size limit) is read from its start.
    """
    joiner = _Joiner()
    files = _open_generations(path)
    current = files.pop() if files and _names(path, files[-1]) else None
    for f in files:
        with f:
            for entry in _entries(f, joiner):
                yield entry
    buffered = b""
    try:
        while True:
            finished = done()
            if current is None:
                current = _open(path)
            chunk = current.read() if current is not None else b""
            # the last round looks for a newer file even after reading the old one: lines
            # written after a rotation and before the exit are in it
            if (finished or not chunk) and current is not None and _names(path, current) is False:
                chunk += current.read()
                current.close()
                current = _open(path)
                chunk += current.read() if current is not None else b""
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
    finally:
        if current is not None:
            current.close()


def _open(path: Path) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _names(path: Path, f: BinaryIO) -> bool | None:
    """Whether `path` names the file open as `f` (False: another file, a rotation); None when
    nothing is at `path`."""
    try:
        return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return None
