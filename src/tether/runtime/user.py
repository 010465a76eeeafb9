"""Resolve `docker run -u` against the image's own /etc/passwd and /etc/group.

Docker resolves users in the container's files, not the host's (runc's libcontainer/user). What it
does, checked against Docker 20.10 on this machine:
- "" is root; "name" or "uid" takes the passwd entry's gid, home and the groups that list the user
  as a member; additional gids are the primary gid followed by those groups (file order).
- "user:group" sets the gid; additional gids are then only that gid.
- numeric ids need no entry: an unknown uid gets gid 0 and home "/", an unknown gid is taken as is.
- unknown names fail with runc's text, which Docker passes through.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tether.rules.errors import ApiError, BadRequest
from tether.runtime import rootfd
from tether.runtime.rootfd import Root


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def _read_entries(rootfs: str, relpath: str) -> list[list[str]]:
    """Colon-separated records of a file in the rootfs; a missing file has none, as in runc.

    The file is found inside the rootfs as runc's securejoin finds it (runtime/rootfd.py): a
    symlinked /etc/passwd resolves inside the root, never to the host's file, even when a
    running container (an exec's) swaps it meanwhile.
    """
    try:
        with Root.open(Path(rootfs)) as root:
            fd = root.regular_file(relpath)
            if fd is None:
                return []
            try:
                with os.fdopen(rootfd.open_regular(fd), encoding="utf-8", errors="replace") as f:
                    lines = f.read().splitlines()
            finally:
                os.close(fd)
    except OSError:  # a link loop, or a root gone with its container: no records
        return []
    return [line.split(":") for line in lines if line.strip() and not line.startswith("#")]


def _passwd(rootfs: str) -> list[_Passwd]:
    entries = []
    for fields in _read_entries(rootfs, "etc/passwd"):
        if len(fields) < 6 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        entries.append(_Passwd(fields[0], int(fields[2]), int(fields[3]), fields[5]))
    return entries


def _groups(rootfs: str) -> list[_Group]:
    entries = []
    for fields in _read_entries(rootfs, "etc/group"):
        if len(fields) < 3 or not fields[2].isdigit():
            continue
        members = tuple(m for m in (fields[3].split(",") if len(fields) > 3 else []) if m)
        entries.append(_Group(fields[0], int(fields[2]), members))
    return entries


def _find_user(rootfs: str, spec: str) -> _Passwd:
    entries = _passwd(rootfs)
    if spec.isdigit():
        uid = int(spec)
        match = next((e for e in entries if e.uid == uid), None)
        return match or _Passwd("", uid, 0, "/")
    match = next((e for e in entries if e.name == spec), None)
    if match is None:
        raise BadRequest(f"unable to find user {spec}: no matching entries in passwd file")
    return match


def _find_group(groups: list[_Group], spec: str) -> int:
    if spec.isdigit():
        return int(spec)
    match = next((g for g in groups if g.name == spec), None)
    if match is None:
        raise BadRequest(f"unable to find group {spec}: no matching entries in group file")
    return match.gid


def resolve_user(rootfs: str, user: str) -> tuple[int, int, list[int], str]:
    """(uid, gid, additional gids, home) for a `-u` value, looked up in the container's files."""
    user_spec, _, group_spec = (user or "0").partition(":")
    entry = _find_user(rootfs, user_spec or "0")
    home = entry.home or "/"
    groups = _groups(rootfs)
    if group_spec:
        gid = _find_group(groups, group_spec)
        return entry.uid, gid, [gid], home
    member_of = [g.gid for g in groups if entry.name and entry.name in g.members]
    additional = list(dict.fromkeys([entry.gid, *member_of]))
    return entry.uid, entry.gid, additional, home


def additional_groups(rootfs: str, names: list[str] | None) -> list[int]:
    """GIDs of `--group-add`, as runc's GetAdditionalGroups finds them in the container's
    /etc/group: a name or a GID of an entry, else a number taken as given (in 0..2^31-1); an
    unknown name fails the start with runc's text, which dockerd passes on (500)."""
    if not names:
        return []
    groups = _groups(rootfs)
    gids: list[int] = []
    for name in names:
        match = next((g for g in groups if g.name == name or str(g.gid) == name), None)
        if match is not None:
            gid = match.gid
        elif re.fullmatch(r"[+-]?[0-9]+", name):
            gid = int(name)
            if not 0 <= gid <= 2147483647:
                raise ApiError("uids and gids must be in range 0-2147483647")
        else:
            raise ApiError(f"Unable to find group {name}: no matching entries in group file")
        gids.append(gid)
    return list(dict.fromkeys(gids))
