"""Atomic JSON records: the daemon can be killed at any instant and find every record whole.

A record is written to a temporary file in the same directory, fsynced, renamed over the old one,
and the directory is fsynced so the rename itself survives a crash.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with the JSON of `obj`, all or nothing. A failure (a full disk) leaves the
    old record as it was and raises an OSError that names `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, separators=(",", ":")).encode()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_native_id()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:  # named after the record it failed to replace (os.write names none)
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def remove_stale_temp_files(directory: Path) -> None:
    """Delete temp files left by a writer that was killed mid-write (the records stay whole)."""
    for stale in Path(directory).glob(".*.tmp*"):
        stale.unlink(missing_ok=True)


def read_json(path: Path) -> Any:
    """Read one record; a missing file raises FileNotFoundError as usual."""
    with open(path, "rb") as f:
        return json.loads(f.read())


def read_object_or_set_aside(path: Path) -> dict[str, Any] | None:
    """A record that is a JSON object, {} when there is none, None when it cannot be read (not
    JSON, not an object, unreadable): that file is renamed `<name>.corrupt-<ns>` beside itself,
    so the caller starts without it instead of stopping the daemon, and nothing is deleted."""
    try:
        record = read_json(path)
        if isinstance(record, dict):
            return record
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        pass
    try:
        os.rename(path, path.with_name(f"{path.name}.corrupt-{time.time_ns()}"))
    except OSError:
        pass
    return None
