"""`docker logs` over conmon's log file: stream choice, since/until, tail, timestamps, follow."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable

from tether.runtime.logs import follow_log, read_log


@dataclass(frozen=True)
class LogQuery:
    streams: frozenset[int]
    follow: bool = False
    timestamps: bool = False
    since: float | None = None
    until: float | None = None
    tail: int = -1          # -1: all


def to_docker_time(stamp: str) -> tuple[str, float]:
    """An RFC3339 time with any offset -> (Docker's UTC RFC3339Nano text, seconds since the epoch)."""
    head, frac, offset = stamp[:19], "", stamp[19:]
    if offset.startswith("."):
        digits = len(offset) - len(offset[1:].lstrip("0123456789"))
        frac, offset = offset[1:digits], offset[digits:]
    moment = datetime.fromisoformat(head + (offset if offset not in ("", "Z") else "+00:00"))
    seconds = moment.timestamp()
    utc = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    nanos = (frac + "000000000")[:9]
    return f"{utc}.{nanos}Z", seconds + int(nanos) / 1e9


def _selected(entries: Iterable[tuple[str, int, bytes]], query: LogQuery):
    for stamp, stream, data in entries:
        if stream not in query.streams:
            continue
        text, seconds = to_docker_time(stamp)
        if query.since is not None and seconds < query.since:
            continue
        if query.until is not None and seconds > query.until:
            continue
        yield (stream, (text.encode() + b" " + data) if query.timestamps else data)


async def log_entries(path: Path, query: LogQuery,
                      running: Callable[[], bool]) -> AsyncIterator[tuple[int, bytes]]:
    """The selected entries; with `follow`, new ones until the container stops."""
    existing = list(_selected(read_log(path), query)) if path.exists() else []
    skip = max(len(existing) - query.tail, 0) if query.tail >= 0 else 0
    if not (query.follow and running()):
        for item in existing[skip:]:
            yield item
        return
    index = 0
    async for stamp, stream, data in follow_log(path, lambda: not running()):
        for item in _selected([(stamp, stream, data)], query):
            index += 1
            if index > skip:
                yield item
