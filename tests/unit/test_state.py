"""Atomic JSON records: whole or absent, never torn, and no litter left behind."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tether.state import read_json, remove_stale_temp_files, write_json_atomic

RECORD: dict[str, Any] = {
    "Id": "0123456789ab",
    "Name": "/happy_turing",
    "Env": ["PATH=/usr/bin", "GREETING=héllo ☃"],
    "Restart": {"Name": "always", "MaximumRetryCount": 0},
    "Running": False,
    "ExitCode": None,
    "Pid": 4242,
    "Ratio": 0.5,
}


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    write_json_atomic(path, RECORD)
    assert read_json(path) == RECORD


@pytest.mark.parametrize("obj", [[], {}, [1, "two", None, True], "text", 7, None])
def test_round_trip_of_any_json_value(tmp_path: Path, obj: Any) -> None:
    path = tmp_path / "v.json"
    write_json_atomic(path, obj)
    assert read_json(path) == obj


def test_accepts_a_string_path_and_creates_parent_dirs(tmp_path: Path) -> None:
    path = tmp_path / "containers" / "abc" / "config.json"
    write_json_atomic(str(path), RECORD)  # type: ignore[arg-type]
    assert read_json(path) == RECORD


def test_writes_plain_json_that_other_tools_can_read(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, RECORD)
    assert json.loads(path.read_text(encoding="utf-8")) == RECORD


def test_replaces_by_rename_not_in_place(tmp_path: Path) -> None:
    """A reader that opened the old record keeps reading the old record, whole."""
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})
    with open(path, "rb") as old_reader:
        old_inode = os.fstat(old_reader.fileno()).st_ino
        write_json_atomic(path, {"v": 2, "more": "x" * 1000})
        assert json.loads(old_reader.read()) == {"v": 1}
    assert os.stat(path).st_ino != old_inode
    assert read_json(path) == {"v": 2, "more": "x" * 1000}


def test_shorter_record_leaves_no_tail_of_the_longer_one(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"pad": "x" * 10_000})
    write_json_atomic(path, {"v": 1})
    assert read_json(path) == {"v": 1}


def test_no_temp_files_left(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    for i in range(5):
        write_json_atomic(path, {"v": i})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_record_is_private_to_root(tmp_path: Path) -> None:
    """Records hold environment variables, which often carry secrets."""
    path = tmp_path / "r.json"
    write_json_atomic(path, RECORD)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_unserialisable_object_keeps_old_record_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert read_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_rename_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.mkdir()  # renaming a file over a directory fails with IsADirectoryError
    with pytest.raises(IsADirectoryError):
        write_json_atomic(target, {"v": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _durability_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **sync: Any) -> list[str]:
    """What write_json_atomic fsyncs and renames, in order: `fsync <name>`, `rename`."""
    steps: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        steps.append("fsync " + Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    def rename(src: Any, dst: Any) -> None:
        steps.append("rename")
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    write_json_atomic(tmp_path / "r.json", RECORD, **sync)
    assert read_json(tmp_path / "r.json") == RECORD
    return [step if not step.startswith("fsync .r.json.tmp") else "fsync data" for step in steps]


def test_default_sync_makes_the_data_and_then_the_rename_durable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _durability_steps(monkeypatch, tmp_path) == [
        "fsync data", "rename", f"fsync {tmp_path.name}"]


def test_data_sync_makes_the_data_durable_before_the_rename_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A power loss may undo the rename, never leave the new name on data not yet written."""
    assert _durability_steps(monkeypatch, tmp_path, sync="data") == ["fsync data", "rename"]


def test_no_sync_still_replaces_by_rename(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _durability_steps(monkeypatch, tmp_path, sync="none") == ["rename"]


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "r.json", {"v": 1})
    (tmp_path / ".r.json.tmp123-456").write_text("torn")
    remove_stale_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_read_missing_record_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json")


def test_read_torn_record_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "torn.json"
    path.write_text('{"v": 1, "pad": "xx')
    with pytest.raises(ValueError):
        read_json(path)


_WRITER = """
import sys
from pathlib import Path
from tether.state import write_json_atomic
path = Path(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    write_json_atomic(path, {"n": i, "pad": "x" * 200_000})
"""


def _kill_writer_at_some_instant(path: Path, delay: float) -> None:
    """Run a process that rewrites `path` as fast as it can and SIGKILL it mid-stream."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_record_survives_the_writer_being_killed_at_any_instant(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json_atomic(path, {"n": 0, "pad": "x" * 200_000})
    last = 0
    for attempt in range(12):
        _kill_writer_at_some_instant(path, 0.005 * attempt)
        record = read_json(path)
        assert record["pad"] == "x" * 200_000
        assert isinstance(record["n"], int) and record["n"] >= 0
        last = max(last, record["n"])
    assert last > 0, "the writer never completed a write, so the test proved nothing"
