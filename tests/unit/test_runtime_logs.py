"""Parsing conmon's k8s-file logs, with lines in the exact shape conmon 2.1.6 wrote here."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.runtime.logs import follow_log, parse_line, read_log

T1 = "2026-11-25T19:01:15.050585187+00:00"
T2 = "2026-11-25T19:01:15.050656593+00:00"


def test_parse_line() -> None:
    assert parse_line(f"{T1} stdout F hi\n".encode()) == (T1, 1, b"hi", False)
    assert parse_line(f"{T2} stderr P par".encode()) == (T2, 2, b"par", True)
    assert parse_line(f"{T1} stdout F \n".encode()) == (T1, 1, b"", False)
    assert parse_line(f"{T1} stdout F a b  c\n".encode()) == (T1, 1, b"a b  c", False)
    with pytest.raises(ValueError):
        parse_line(b"garbage\n")


def test_read_log_joins_partials_and_keeps_unterminated_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(f"{T1} stdout P hel\n{T2} stderr F err\n{T2} stdout F lo\n{T2} stdout P tail\n".encode())
    assert list(read_log(log)) == [(T2, 2, b"err\n"), (T1, 1, b"hello\n"), (T2, 1, b"tail")]


def test_read_log_missing_file(tmp_path: Path) -> None:
    assert list(read_log(tmp_path / "nope")) == []


def test_follow_log_yields_new_entries_until_done(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(f"{T1} stdout F one\n".encode())
    finished = False

    async def writer() -> None:
        nonlocal finished
        await asyncio.sleep(0.1)
        with open(log, "ab") as f:
            f.write(f"{T2} stdout F tw".encode())  # one record that lands in two writes
            f.flush()
            await asyncio.sleep(0.1)
            f.write(f"o\n{T2} stderr F three\n{T2} stdout P end\n".encode())
        finished = True

    async def go() -> list:
        task = asyncio.create_task(writer())
        entries = [e async for e in follow_log(log, lambda: finished)]
        await task
        return entries

    assert asyncio.run(asyncio.wait_for(go(), 5)) == [
        (T1, 1, b"one\n"), (T2, 1, b"two\n"), (T2, 2, b"three\n"), (T2, 1, b"end")]


def test_follow_reads_a_file_started_anew(tmp_path: Path) -> None:
    """conmon's --log-size-max replaces the file by a rename: a follower goes on with the new
    file from its start, even when it is shorter than what was read of the old one."""
    log = tmp_path / "ctr.log"
    log.write_bytes(f"{T1} stdout F a-long-first-line\n".encode())
    finished = False

    async def writer() -> None:
        nonlocal finished
        await asyncio.sleep(0.2)
        fresh = tmp_path / "ctr.log.tmp"
        fresh.write_bytes(f"{T2} stdout F b\n".encode())
        fresh.rename(log)
        await asyncio.sleep(0.2)
        finished = True

    async def go() -> list:
        task = asyncio.create_task(writer())
        entries = [e async for e in follow_log(log, lambda: finished)]
        await task
        return entries

    assert asyncio.run(asyncio.wait_for(go(), 5)) == [(T1, 1, b"a-long-first-line\n"),
                                                       (T2, 1, b"b\n")]


def test_follow_drains_the_new_file_when_the_end_comes_with_a_rotation(tmp_path: Path) -> None:
    """The container writes to the old file, the log rotates, it writes to the new file and
    exits, all between two polls: the follower's last round reads both."""
    log = tmp_path / "ctr.log"
    log.write_bytes(f"{T1} stdout F a\n".encode())
    finished = False

    async def go() -> list:
        nonlocal finished
        entries = []
        follower = follow_log(log, lambda: finished)
        entries.append(await follower.__anext__())  # "a" read: the follower holds the file
        with open(log, "ab") as f:
            f.write(f"{T1} stdout F b\n".encode())
        log.rename(tmp_path / "ctr.log.1")
        log.write_bytes(f"{T2} stdout F c\n".encode())
        finished = True
        entries += [e async for e in follower]
        return entries

    assert asyncio.run(asyncio.wait_for(go(), 5)) == [
        (T1, 1, b"a\n"), (T1, 1, b"b\n"), (T2, 1, b"c\n")]


def test_rotation_keeps_max_files_and_reads_oldest_first(tmp_path: Path) -> None:
    from tether.runtime.logs import generations, rotate
    log = tmp_path / "ctr.log"
    for n in range(5):
        log.write_bytes(f"{T1} stdout F line{n}\n".encode())
        rotate(log, 3)
    log.write_bytes(f"{T2} stdout F line5\n".encode())
    assert [p.name for p in generations(log)] == ["ctr.log.2", "ctr.log.1", "ctr.log"]
    assert [data for _, _, data in read_log(log)] == [b"line3\n", b"line4\n", b"line5\n"]
