"""runtime/execfifo.py against a real fifo and a real writer process standing in for runc init:
the byte is read to the end, the fifo removed; runc's texts when there is no fifo or the
process died without writing."""
from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tether.runtime import execfifo


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / execfifo.FIFO
    os.mkfifo(path, 0o600)
    return path


async def _release(container_dir: Path, pid: int) -> None:
    """As Runtime.start calls it: a pidfd of init first, closed afterwards."""
    init = execfifo.pidfd(pid)
    try:
        await asyncio.wait_for(execfifo.release(container_dir, init), 10)
    finally:
        if init >= 0:
            os.close(init)


def _writer(script: str, fifo: Path) -> subprocess.Popen:
    """A shell that opens the fifo for writing as init does (blocking until a reader comes)."""
    return subprocess.Popen(["sh", "-c", script, "sh", str(fifo)])


def test_release_reads_the_byte_and_removes_the_fifo(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    init = _writer('printf 0 > "$1"; sleep 0.2', fifo)
    try:
        asyncio.run(_release(tmp_path, init.pid))
        assert not fifo.exists()
    finally:
        init.kill()
        init.wait()


def test_release_after_init_wrote_and_ended(tmp_path: Path) -> None:
    """init wrote, exec'ed and exited before the start: what it wrote still starts it (runc's
    check after init's death)."""
    fifo = _fifo(tmp_path)
    holder = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer through, then closed
    init = _writer('printf 0 > "$1"', fifo)
    init.wait()
    try:
        # the writer is gone with its byte still in the pipe: the holder's read end kept it
        asyncio.run(_release(tmp_path, init.pid))
    finally:
        os.close(holder)
    assert not fifo.exists()


def test_dead_init_that_never_wrote_is_runcs_error(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    init = subprocess.Popen(["sh", "-c", "sleep 0.2"])
    try:
        with pytest.raises(RuntimeError, match="^container process is already dead$"):
            asyncio.run(_release(tmp_path, init.pid))
    finally:
        init.wait()
    assert fifo.exists()  # as runc: a failed start leaves the created state alone


def test_no_fifo_is_an_already_running_container(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="^cannot start an already running container$"):
        asyncio.run(_release(tmp_path, os.getpid()))
