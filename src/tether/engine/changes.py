"""`docker diff`: the container's changes, read from its overlay upper dir as Docker's overlay2 does.

Same walk as moby's `archive.OverlayChanges`: depth first, names in byte order, a whiteout
(char device 0:0) or an opaque directory is a deletion, anything else is an addition unless it
exists in a lower layer (a modification); a directory whose size, mode and mtime match the lower
one is left out, and the parent of an addition or deletion is reported modified once.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tether.runtime import rootfd
from tether.runtime.rootfd import Root

MODIFY, ADD, DELETE = 0, 1, 2


@dataclass(frozen=True)
class Change:
    path: str
    kind: int

    def to_json(self) -> dict[str, object]:
        return {"Path": self.path, "Kind": self.kind}


def _is_deletion(fd: int, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISDIR(st.st_mode) and rootfd.getxattr(fd, "trusted.overlay.opaque") == b"y"


def _same_time(a: int, b: int) -> bool:
    """Go's sameFsTime: equal, or equal seconds when one side has no nanoseconds."""
    if a == b:
        return True
    if a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0:
        return a // 1_000_000_000 == b // 1_000_000_000
    return False


def _kind(path: str, st: os.stat_result, lowers: list[Path]) -> int | None:
    """ADD, MODIFY, or None for a directory identical to the lower one."""
    for layer in lowers:
        try:
            low = os.stat(layer / path.lstrip("/"))  # followed, as Go's os.Stat
        except (FileNotFoundError, NotADirectoryError):
            continue
        if (stat.S_ISDIR(low.st_mode) and stat.S_ISDIR(st.st_mode) and low.st_size == st.st_size
                and low.st_mode == st.st_mode and _same_time(low.st_mtime_ns, st.st_mtime_ns)):
            return None
        return MODIFY
    return ADD


def overlay_changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The changes of `upper` against `lowers` (top layer first), in Docker's order."""
    if not upper.is_dir():
        return []
    changes: list[Change] = []
    changed_dirs: set[str] = set()
    with Root.open(upper) as root:  # written by a running container: walked by fds
        top = root.open_at("/", os.O_PATH | os.O_DIRECTORY)
        try:
            for rel, st, fd in rootfd.walk(top, ""):
                if rel:
                    _add(changes, changed_dirs, "/" + rel, st,
                         DELETE if _is_deletion(fd, st) else _kind("/" + rel, st, lowers))
        finally:
            os.close(top)
    return changes


def _add(changes: list[Change], changed_dirs: set[str], path: str, st: os.stat_result,
         kind: int | None) -> None:
    """Record one entry's change, and its parent's modification once before it."""
    if kind is None:
        return
    if stat.S_ISDIR(st.st_mode):
        changed_dirs.add(path)
    parent = os.path.dirname(path)
    if kind in (ADD, DELETE) and parent != "/" and parent not in changed_dirs:
        changes.append(Change(parent, MODIFY))
        changed_dirs.add(parent)
    changes.append(Change(path, kind))
