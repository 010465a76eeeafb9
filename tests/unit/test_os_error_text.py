"""File errors told to clients in Go's shape, never with a host path."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tether import state
from tether.rules.errors import go_errno_text, os_error_text


def test_full_disk_is_dockerds_write_text_relative_to_the_data_root():
    exc = OSError(errno.ENOSPC, "No space left on device", "/var/lib/tether/containers/abc/hosts")
    assert os_error_text(exc, Path("/var/lib/tether")) == \
        "write containers/abc/hosts: no space left on device"


def test_a_path_outside_the_root_or_without_root_shows_its_last_element_only():
    exc = OSError(errno.ENOSPC, "No space left on device", "/run/tether/bundles/abc/config.json")
    assert os_error_text(exc, Path("/var/lib/tether")) == \
        "write config.json: no space left on device"
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/srv/data/blob")
    assert os_error_text(missing) == "open blob: no such file or directory"


def test_no_filename_gives_the_errno_text_alone():
    assert os_error_text(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk quota exceeded"
    assert go_errno_text(OSError(errno.EADDRINUSE, "x")) == "address already in use"
    # a message carrying a path in its strerror is not repeated
    assert "/srv" not in os_error_text(OSError(errno.EBUSY, "unmount /srv/x: busy"))


def test_failed_record_write_names_the_record_and_keeps_the_old_one(tmp_path, monkeypatch):
    record = tmp_path / "config.json"
    state.write_json_atomic(record, {"name": "/old"})

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(state.os, "write", full)
    with pytest.raises(OSError) as caught:
        state.write_json_atomic(record, {"name": "/new"})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(record)
    monkeypatch.undo()
    assert state.read_json(record) == {"name": "/old"}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left
