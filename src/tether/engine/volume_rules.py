"""Docker's rules for local volumes, as pure functions: names, driver options, `o=` mount
options, list and prune filters.

dockerd's local driver (moby `volume/local`) and its volume service decide what a user may call a
volume, which `--opt` keys it takes, how `o=` turns into mount(2) flags and data (moby/sys/mount's
`parseOptions`) and what `volume ls --filter` and `volume prune --filter` accept. Users and
compose files depend on those answers and on the exact error texts, so they are kept here, away
from the filesystem, where unit tests can pin each one.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tether.rules.filters import check_keys, invalid_value, label_matches
from tether.rules.names import RESTRICTED_NAME_CHARS

LOCAL_DRIVER = "local"

# Since API 1.42 (moby 23) the daemon marks the volumes it makes for containers (`-v /path`, an
# image's VOLUME) with this label, and `volume prune` removes only those unless `all=true`.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"

# The API version from which prune spares named volumes by default.
PRUNE_ANONYMOUS_ONLY_SINCE = (1, 42)

_NAME_PATTERN = re.compile(RESTRICTED_NAME_CHARS + "+")

# The local driver's option keys on Linux (moby volume/local/local_unix.go `validOpts`); `size`
# needs quota support on the data root, which tether does not offer.
VALID_OPTS = ("type", "device", "o", "size")

# An option that needs another one beside it (moby's `mandatoryOpts`).
_REQUIRED_WITH = (("device", "type"), ("type", "device"), ("o", "device"))

_LIST_FILTERS = ("dangling", "driver", "label", "name")
_PRUNE_FILTERS = ("label", "label!", "all")

# mount(2) flags (linux/mount.h).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# Propagation flags: applied by a second mount(2) call, after the mount itself exists.
PROPAGATION_FLAGS = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# moby/sys/mount `flags`: option word -> (clears the flag, flag).
_FLAG_WORDS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "suid": (True, MS_NOSUID), "nosuid": (False, MS_NOSUID),
    "dev": (True, MS_NODEV), "nodev": (False, MS_NODEV),
    "exec": (True, MS_NOEXEC), "noexec": (False, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "dirsync": (False, MS_DIRSYNC),
    "remount": (False, MS_REMOUNT),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "atime": (True, MS_NOATIME), "noatime": (False, MS_NOATIME),
    "diratime": (True, MS_NODIRATIME), "nodiratime": (False, MS_NODIRATIME),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "unbindable": (False, MS_UNBINDABLE), "runbindable": (False, MS_UNBINDABLE | MS_REC),
    "private": (False, MS_PRIVATE), "rprivate": (False, MS_PRIVATE | MS_REC),
    "shared": (False, MS_SHARED), "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE), "rslave": (False, MS_SLAVE | MS_REC),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
}


def name_error(name: str) -> str | None:
    """Why the local driver refuses `name`, in its words; None when the name is fine."""
    if len(name) == 1:
        return "volume name is too short, names should be at least two alphanumeric characters"
    if not _NAME_PATTERN.fullmatch(name):
        return (f'"{name}" includes invalid characters for a local volume name, only '
                f'"{RESTRICTED_NAME_CHARS}" are allowed. If you intended to pass a host directory, '
                "use absolute path")
    return None


def options_error(options: dict[str, str]) -> str | None:
    """Why the local driver refuses these `--opt`s; None when they are fine (or absent)."""
    for key in options:
        if key not in VALID_OPTS:
            return f'invalid option: "{key}"'
    for given, needed in _REQUIRED_WITH:
        if given in options and needed not in options:
            return f'missing required option: "{needed}"'
    if "size" in options:
        return "quota size requested but no quota support"
    return None


@dataclass(frozen=True)
class MountRequest:
    """One mount(2) of a volume's device on its mountpoint, as moby/sys/mount would make it."""

    device: str
    fstype: str
    flags: int
    data: str

    @property
    def remount_read_only(self) -> bool:
        """A read-only bind needs a second, remounting call: MS_RDONLY is ignored with MS_BIND."""
        return self.flags & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY


def mount_request(options: dict[str, str]) -> MountRequest | None:
    """The mount a volume's `--opt`s ask for; None for a plain directory (no options)."""
    if not options:
        return None
    flags, data = parse_mount_options(options.get("o", ""))
    return MountRequest(options.get("device", ""), options.get("type", ""), flags, data)


def parse_mount_options(text: str) -> tuple[int, str]:
    """Split an `o=` value into mount(2) flags and the data string the filesystem reads
    (`size=64m,uid=1000` for tmpfs), as moby/sys/mount's parseOptions does."""
    flags = 0
    data: list[str] = []
    for word in text.split(","):
        known = _FLAG_WORDS.get(word)
        if known is None:
            if word:
                data.append(word)
            continue
        clear, flag = known
        flags = flags & ~flag if clear else flags | flag
    return flags, ",".join(data)


def mount_error_text(op: str, source: str, target: str, flags: int, data: str, err: str) -> str:
    """moby/sys/mount's mountError wording: `mount SRC:DST, flags: 0x.., data: ..: reason`."""
    out = f"{op} " + (f"{source}:{target}" if source else target)
    if flags:
        out += f", flags: {flags:#x}"
    if data:
        out += f", data: {data}"
    return f"{out}: {err}"


def dangling_filter(values: list[str]) -> bool:
    """`dangling` takes exactly true/1 or false/0; when both are given, true wins (dockerd
    checks it first)."""
    if "true" in values or "1" in values:
        return True
    if "false" in values or "0" in values:
        return False
    raise invalid_value("dangling", values)


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def all_filter(values: list[str]) -> bool:
    """`all` of prune: one value that Go's strconv.ParseBool reads."""
    if len(values) == 1 and values[0] in _GO_TRUE + _GO_FALSE:
        return values[0] in _GO_TRUE
    raise invalid_value("all", values)


def name_matches(pattern: str, name: str) -> bool:
    """The `name` filter is an unanchored regular expression (moby filters.Match)."""
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def list_predicate(filters: dict[str, list[str]],
                   in_use: Callable[[str], bool]) -> Callable[[str, str, dict[str, str]], bool]:
    """A test `(name, driver, labels) -> bool` for `GET /volumes?filters=`; `in_use(name)` says
    whether any container refers to the volume. Within a key any value may match (labels: all)."""
    check_keys(filters, _LIST_FILTERS)
    dangling = dangling_filter(filters["dangling"]) if "dangling" in filters else None
    names = filters.get("name", [])
    drivers = filters.get("driver", [])
    labels = filters.get("label", [])

    def test(name: str, driver: str, volume_labels: dict[str, str]) -> bool:
        return ((not names or any(name_matches(p, name) for p in names))
                and (not drivers or driver in drivers)
                and all(label_matches(volume_labels, s) for s in labels)
                and (dangling is None or in_use(name) != dangling))

    return test


def prune_predicate(filters: dict[str, list[str]],
                    api_version: tuple[int, int]) -> Callable[[dict[str, str]], bool]:
    """A test on a volume's labels for `POST /volumes/prune` (the caller already keeps only unused
    local volumes). Before API 1.42 every unused volume goes; since, only anonymous ones unless
    the `all` filter is true."""
    old_api = api_version < PRUNE_ANONYMOUS_ONLY_SINCE
    check_keys(filters, _PRUNE_FILTERS[:2] if old_api else _PRUNE_FILTERS)
    everything = old_api or ("all" in filters and all_filter(filters["all"]))
    wanted = filters.get("label", [])
    unwanted = filters.get("label!", [])

    def test(labels: dict[str, str]) -> bool:
        return ((everything or ANONYMOUS_LABEL in labels)
                and all(label_matches(labels, s) for s in wanted)
                and not any(label_matches(labels, s) for s in unwanted))

    return test
