"""Atomic JSON records: the daemon can be killed at any instant and find every record whole.

A record is written to a temporary file in the same directory and renamed over the old one, so
a reader, or a daemon killed at any instant, sees the old record or the new one, whole. What
survives a power loss (or a kernel crash) as well is the writer's choice (`Sync`), because each
fsync waits for the filesystem's journal, on the daemon's loop:
- "rename" (the default): the file's data is fsynced before the rename and the directory after
  it, so the new record is on disk when the call returns. For records that are written rarely
  and that nothing can rebuild: networks, volumes, the image store's indexes.
- "data": the file's data is fsynced before the rename, the directory is not (dockerd writes
  its container records the same way). A power loss can then undo the last renames, those the
  filesystem had not yet committed (ext4: up to its commit interval, 5 s), but never tear a
  record: its data was on disk before the rename could be. For container records, written twice
  by every start (create, then running) and by every stop or health change: after a power loss
  nothing of a container runs, recovery (tether.engine.recovery) meets the record before the
  lost rename, which describes the same container stopped, or no record for a container whose
  create was lost, a half-made container it removes as after a crash during create.
- "none": no fsync. For files the daemon writes again before it uses them after a reboot: a
  bundle's config.json, read by runc right away and rewritten at every start.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

Sync = Literal["rename", "data", "none"]


def write_json_atomic(path: Path, obj: Any, sync: Sync = "rename") -> None:
    """Replace `path` with the JSON of `obj`, all or nothing, as durable as `sync` says (see the
    module's docstring). A failure (a full disk) leaves the old record as it was and raises an
    OSError that names `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(obj, separators=(",", ":")).encode()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_native_id()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if sync != "none":
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
    if sync != "rename":
        return
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
