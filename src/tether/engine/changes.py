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

MODIFY, ADD, DELETE = 0, 1, 2


@dataclass(frozen=True)
class Change:
    path: str
    kind: int

    def to_json(self) -> dict[str, object]:
        return {"Path": self.path, "Kind": self.kind}


def _is_deletion(host: Path, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if stat.S_ISDIR(st.st_mode):
        try:
            return os.getxattr(host, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
        except OSError:
            return False
    return False


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


def _walk(upper: Path, rel: str = "/") -> list[tuple[str, Path, os.stat_result]]:
    """Every entry below `upper`, depth first, each directory before its contents, sorted."""
    entries = []
    base = upper / rel.lstrip("/")
    for name in sorted(os.listdir(base), key=os.fsencode):
        path = rel.rstrip("/") + "/" + name
        host = base / name
        st = host.lstat()
        entries.append((path, host, st))
        if stat.S_ISDIR(st.st_mode):
            entries.extend(_walk(upper, path))
    return entries


def overlay_changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The changes of `upper` against `lowers` (top layer first), in Docker's order."""
    if not upper.is_dir():
        return []
    changes: list[Change] = []
    changed_dirs: set[str] = set()
    for path, host, st in _walk(upper):
        kind = DELETE if _is_deletion(host, st) else _kind(path, st, lowers)
        if kind is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        parent = os.path.dirname(path)
        if kind in (ADD, DELETE) and parent != "/" and parent not in changed_dirs:
            changes.append(Change(parent, MODIFY))
            changed_dirs.add(parent)
        changes.append(Change(path, kind))
    return changes
