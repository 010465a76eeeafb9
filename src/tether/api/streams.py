"""Docker's stream framing (moby `pkg/stdcopy`) and the content types that announce it.

When a container has no tty, stdout and stderr share one connection, so each write is prefixed
with an 8-byte header naming the stream and the payload length; clients (the docker CLI's
`stdcopy.StdCopy`, docker-py's `frames_iter`) split the bytes back apart. With a tty the bytes
are sent raw, which is what `RAW` announces.
"""
from __future__ import annotations

import struct

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"

STDIN = 0
STDOUT = 1
STDERR = 2
SYSTEMERR = 3
"""Stream 3 makes the CLI stop with "error from daemon in stream": for errors after the 101."""

MAX_FRAME = 1 << 20
"""Larger payloads are split so that a client never has to buffer one huge frame."""

_HEADER = struct.Struct(">BxxxL")


def frame(stream: int, data: bytes) -> bytes:
    """Frame `data` for `stream` (0-3); a payload over MAX_FRAME becomes several frames.

    Empty data gives b"": a zero-length frame carries nothing, so there is nothing to send.
    """
    if not STDIN <= stream <= SYSTEMERR:
        raise ValueError(f"invalid stream {stream}: must be 0 to 3")
    if len(data) <= MAX_FRAME:
        return _HEADER.pack(stream, len(data)) + data if data else b""
    view = memoryview(data)
    return b"".join(
        _HEADER.pack(stream, len(part)) + part
        for part in (bytes(view[i:i + MAX_FRAME]) for i in range(0, len(data), MAX_FRAME))
    )


_NAMED_FROM = (1, 42)
"""The first API version whose replies call the framed stream multiplexed (dockerd 23+);
Docker 20.10, which speaks up to 1.41, answers newer versions with a 400."""


def attach_content_type(tty: bool, version: tuple[int, int], upgrade: bool) -> str:
    """Attach's Content-Type: multiplexed only for a framed stream, from API 1.42, in a 101
    (dockerd's plain 200 reply, for a client without Upgrade, always says raw)."""
    return MULTIPLEXED if not tty and upgrade and version >= _NAMED_FROM else RAW


def logs_content_type(tty: bool, version: tuple[int, int]) -> str | None:
    """The logs reply's Content-Type: none at all below API 1.42 (Docker 20.10 names none,
    whether framed or a TTY's, followed or not); from 1.42 on, as dockerd 23+ names it."""
    if version < _NAMED_FROM:
        return None
    return RAW if tty else MULTIPLEXED
