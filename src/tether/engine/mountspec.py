"""Docker's mount grammar: `-v` strings (HostConfig.Binds), `--mount` objects (HostConfig.Mounts),
`--tmpfs` (HostConfig.Tmpfs), `--volumes-from`, and how they combine into a container's mount plan.

Pure functions with dockerd's rules and error texts (moby volume/mounts linux_parser.go,
daemon/volumes.go registerMountPoints, pkg/mount MergeTmpfsOptions), so that a request fails the
same way whichever client sent it. What needs the outside world (does a bind source exist, which
mount points does another container have) is passed in; volumes are named and created by the
containers service after the plan is made.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

RW_MODES = frozenset({"rw", "ro"})
LABEL_MODES = frozenset({"z", "Z"})
PROPAGATION_MODES = frozenset({"private", "rprivate", "slave", "rslave", "shared", "rshared"})
COPY_MODES = frozenset({"nocopy"})
DEFAULT_PROPAGATION = "rprivate"

# pkg/mount's flag names: an option that sets or clears the same flag replaces the earlier one
_FLAG_GROUPS = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev",
    "nodev": "nodev", "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync",
    "dirsync": "dirsync", "remount": "remount", "mand": "mand", "nomand": "mand",
    "atime": "noatime", "noatime": "noatime", "diratime": "nodiratime",
    "nodiratime": "nodiratime", "bind": "bind", "rbind": "rbind", "relatime": "relatime",
    "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
    **{p: "propagation" for p in ("unbindable", "runbindable", "private", "rprivate", "shared",
                                  "rshared", "slave", "rslave")},
}
_TMPFS_DATA_KEYS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})
_TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)


class MountError(ValueError):
    """A refused mount request with dockerd's text and status: 400, except the errors of a
    `-v` string, which dockerd returns unwrapped (500)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class MountPoint:
    """One entry of a container's mount plan, kept in its record (dockerd's MountPoint).

    `name` is empty for a volume that is still to be created (anonymous); `spec_source` is what
    the request named as source: an empty one marks an anonymous volume (`rm -v` removes those).
    """

    type: str                      # bind | volume | tmpfs
    destination: str
    source: str = ""               # bind: the host path; volume: its mountpoint once created
    name: str = ""
    driver: str = ""
    mode: str = ""
    rw: bool = True
    propagation: str = ""
    copy_data: bool = False        # seed a new (empty) volume with the image's content there
    non_recursive: bool = False
    tmpfs_data: str = ""           # `--mount type=tmpfs` options, as mount data
    spec_source: str = ""
    volume_options: dict[str, Any] = field(default_factory=dict)  # DriverOpts, Labels
    create_source: bool = False    # a `-v` bind: a missing host directory is made at start

    @property
    def anonymous(self) -> bool:
        return self.type == "volume" and not self.spec_source

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MountPoint:
        return cls(**data)

    def view(self) -> dict[str, Any]:
        """An item of inspect's `Mounts`, keyed in dockerd's order (Name, Driver: volumes)."""
        item: dict[str, Any] = {"Type": self.type}
        if self.type == "volume":
            item["Name"] = self.name
        item["Source"] = self.source
        item["Destination"] = self.destination
        if self.type == "volume":
            item["Driver"] = self.driver
        item.update(Mode=self.mode, RW=self.rw, Propagation=self.propagation)
        return item

    def covers(self, path: str) -> bool:
        """Whether container path `path` is this mount's destination or under it."""
        rel = posixpath.relpath(posixpath.normpath(path), self.destination)
        return rel != ".." and not rel.startswith("../")


# ---- small rules ---------------------------------------------------------------------------

def valid_mode(mode: str) -> bool:
    """linuxValidMountMode: known options, at most one of each kind."""
    if not mode:
        return True
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0}
    for option in mode.split(","):
        if option in RW_MODES:
            counts["rw"] += 1
        elif option in LABEL_MODES:
            counts["label"] += 1
        elif option in PROPAGATION_MODES:
            counts["propagation"] += 1
        elif option in COPY_MODES:
            counts["copy"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def read_write(mode: str) -> bool:
    return "ro" not in mode.split(",")


def _propagation(mode: str) -> str:
    return next((o for o in mode.split(",") if o in PROPAGATION_MODES), "")


def _no_copy(mode: str) -> bool | None:
    """True for `nocopy`, None when the mode says nothing about copying."""
    return True if "nocopy" in mode.split(",") else None


def _invalid_spec(raw: str) -> MountError:
    return MountError(f"invalid volume specification: '{raw}'", 500)


def _config_error(kind: str, text: str) -> MountError:
    return MountError(f'invalid mount config for type "{kind}": {text}')


def _absolute_error(path: str) -> str | None:
    return None if path.startswith("/") else f"invalid mount path: '{path}' mount path must be absolute"


def _root_error(path: str) -> str | None:
    return "invalid specification: destination can't be '/'" if posixpath.normpath(path) == "/" \
        else None


def validate_tmpfs_destination(destination: str) -> None:
    """HostConfig.Tmpfs keys: absolute, not `/`."""
    problem = _root_error(destination) or _absolute_error(destination)
    if problem:
        raise MountError(problem)


def tmpfs_size_text(size: int) -> str:
    """`SizeBytes` as mount data: the largest of g, m, k that divides it, else bytes."""
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % divisor == 0:
            return f"{size // divisor}{suffix}"
    return str(size)


def tmpfs_data(options: dict[str, Any] | None, read_only: bool) -> str:
    """ConvertTmpfsOptions: `--mount type=tmpfs` settings as mount data."""
    options = options or {}
    raw = ["ro"] if read_only else []
    if options.get("Mode"):
        raw.append(f"mode={int(options['Mode']):o}")
    if options.get("SizeBytes"):
        size = int(options["SizeBytes"])
        if size < 0:
            raise MountError("invalid tmpfs size: negative")
        raw.append(f"size={tmpfs_size_text(size)}")
    return ",".join(raw)


def merge_tmpfs_options(data: str) -> list[str]:
    """MergeTmpfsOptions over Docker's defaults then `data`: later options replace earlier ones
    of the same flag or key; an unknown `key=value` is refused with dockerd's text."""
    options = [*_TMPFS_DEFAULTS, *(data.split(",") if data else [])]
    seen: set[str] = set()
    merged: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        if option in _FLAG_GROUPS:
            key = "flag:" + _FLAG_GROUPS[option]
        else:
            parts = option.split("=", 1)
            if len(parts) != 2 or parts[0] not in _TMPFS_DATA_KEYS:
                raise MountError("invalid tmpfs option [" + " ".join(f'"{p}"' for p in parts) + "]")
            key = "data:" + parts[0]
        if key not in seen:
            seen.add(key)
            merged.insert(0, option)
    return merged


# ---- -v strings, --mount objects, --volumes-from ------------------------------------------

def _validate_mount(cfg: dict[str, Any], source_exists: Callable[[str], bool] | None) -> None:
    """validateMountConfigImpl; `source_exists` None skips the bind source check (`-v`)."""
    kind = cfg.get("Type") or ""
    target = cfg.get("Target") or ""
    source = cfg.get("Source") or ""
    if not target:
        raise _config_error(kind, "field Target must not be empty")
    problem = _root_error(target) or _absolute_error(target)
    if problem:
        raise _config_error(kind, problem)
    if kind == "bind":
        if not source:
            raise _config_error(kind, "field Source must not be empty")
        propagation = (cfg.get("BindOptions") or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATION_MODES:
            raise _config_error(kind, f"invalid propagation mode: {propagation}")
        if cfg.get("VolumeOptions") is not None:
            raise _config_error(kind, "field VolumeOptions must not be specified")
        problem = _absolute_error(source)
        if problem:
            raise _config_error(kind, problem)
        if source_exists is not None and not source_exists(source):
            raise _config_error(kind, f"bind source path does not exist: {source}")
    elif kind == "volume":
        if cfg.get("BindOptions") is not None:
            raise _config_error(kind, "field BindOptions must not be specified")
        if not source and cfg.get("ReadOnly"):
            raise _config_error(kind, "must not set ReadOnly mode when using anonymous volumes")
    elif kind == "tmpfs":
        if cfg.get("BindOptions") is not None:
            raise _config_error(kind, "field BindOptions must not be specified")
        if source:
            raise _config_error(kind, "field Source must not be specified")
        try:
            tmpfs_data(cfg.get("TmpfsOptions"), bool(cfg.get("ReadOnly")))
        except MountError as exc:
            raise _config_error(kind, str(exc)) from None
    else:
        raise _config_error(kind, "mount type unknown")


def _mount_point(cfg: dict[str, Any], source_exists: Callable[[str], bool] | None) -> MountPoint:
    """parseMountSpec: a validated mount object as a plan entry."""
    _validate_mount(cfg, source_exists)
    kind = cfg["Type"]
    source = cfg.get("Source") or ""
    mp = MountPoint(type=kind, destination=posixpath.normpath(cfg["Target"]),
                    rw=not cfg.get("ReadOnly"), spec_source=source)
    if kind == "volume":
        options = cfg.get("VolumeOptions") or {}
        mp.name = source
        mp.copy_data = not options.get("NoCopy")
        mp.driver = (options.get("DriverConfig") or {}).get("Name") or ""
        mp.volume_options = {"DriverOpts": (options.get("DriverConfig") or {}).get("Options"),
                             "Labels": options.get("Labels")}
    elif kind == "bind":
        mp.source = posixpath.normpath(source)
        bind = cfg.get("BindOptions") or {}
        mp.propagation = bind.get("Propagation") or DEFAULT_PROPAGATION
        mp.non_recursive = bool(bind.get("NonRecursive"))
    else:
        mp.tmpfs_data = tmpfs_data(cfg.get("TmpfsOptions"), bool(cfg.get("ReadOnly")))
    return mp


def parse_bind(raw: str) -> MountPoint:
    """ParseMountRaw: one HostConfig.Binds string, `[source:]destination[:mode]`."""
    if raw.count(":") > 2:
        raise _invalid_spec(raw)
    parts = raw.split(":", 2)
    if not parts[0]:
        raise _invalid_spec(raw)
    mode = ""
    source = ""
    if len(parts) == 1:
        target = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):  # `/foo:rw`: a volume cannot have a mode without a source
            raise _invalid_spec(raw)
        source, target = parts
    else:
        source, target, mode = parts
    if not valid_mode(mode):
        raise MountError(f"invalid mode: {mode}", 500)
    cfg: dict[str, Any] = {"Type": "bind" if source.startswith("/") else "volume",
                           "Source": source, "Target": target, "ReadOnly": not read_write(mode)}
    if _no_copy(mode):
        cfg["VolumeOptions"] = {"NoCopy": True}
    if _propagation(mode):
        cfg["BindOptions"] = {"Propagation": _propagation(mode)}
    try:
        mp = _mount_point(cfg, None)
    except MountError as exc:
        raise MountError(f"invalid volume specification: '{raw}': {exc}", 500) from None
    mp.mode = mode
    mp.create_source = mp.type == "bind"
    return mp


def parse_mount(cfg: dict[str, Any], source_exists: Callable[[str], bool]) -> MountPoint:
    """ParseMountSpec: one HostConfig.Mounts object (a `--mount` flag); a bind's source must
    exist."""
    if not isinstance(cfg, dict):
        raise MountError("invalid mount config: not an object")
    return _mount_point(cfg, source_exists)


def validate_mounts(mounts: Iterable[dict[str, Any]], tmpfs: Iterable[str],
                    source_exists: Callable[[str], bool]) -> None:
    """What dockerd checks before it looks at the image: every Mounts object and Tmpfs key."""
    for cfg in mounts:
        parse_mount(cfg, source_exists)
    for destination in tmpfs:
        validate_tmpfs_destination(destination)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """ParseVolumesFrom: `container[:mode]` -> (container, mode); no propagation, no nocopy."""
    if not spec:
        raise MountError("volumes-from specification cannot be an empty string")
    ref, sep, mode = spec.partition(":")
    if not sep:
        return ref, "rw"
    if not valid_mode(mode) or _propagation(mode) or _no_copy(mode):
        raise MountError(f"invalid mode: {mode}")
    return ref, mode


def inherited(mp: MountPoint, mode: str) -> MountPoint:
    """A mount point taken from another container by `--volumes-from`: never copied up again,
    read-only if either side says so, without the original's mode string (as dockerd copies it)."""
    return MountPoint(**{**mp.to_json(), "rw": mp.rw and read_write(mode), "copy_data": False,
                         "mode": ""})


# ---- the plan ------------------------------------------------------------------------------

def duplicate(destination: str) -> MountError:
    return MountError(f"Duplicate mount point: {destination}")


def plan(binds: Iterable[str], mounts: Iterable[dict[str, Any]], tmpfs: dict[str, str],
         from_others: Iterable[MountPoint], image_volumes: Iterable[str],
         source_exists: Callable[[str], bool]) -> list[MountPoint]:
    """registerMountPoints plus the image's (and Config's) anonymous volumes, in dockerd's order:
    volumes-from first, then binds (which replace them), then mounts; a destination given twice
    by binds and mounts (or a bind on a `--tmpfs` path) is refused; a Config.Volumes path that
    something already covers is skipped."""
    points: dict[str, MountPoint] = {mp.destination: mp for mp in from_others}
    taken: set[str] = set()
    for raw in binds:
        mp = parse_bind(raw)
        if mp.destination in taken or mp.destination in tmpfs:
            raise duplicate(mp.destination)
        if mp.type == "volume" and not mp.mode:
            mp.mode = "z"  # setBindModeIfNull, for the local driver
        taken.add(mp.destination)
        points[mp.destination] = mp
    for cfg in mounts:
        mp = parse_mount(cfg, source_exists)
        if mp.destination in taken:
            raise duplicate(cfg.get("Target"))
        if mp.type == "volume":
            mp.mode = "z"
            mp.driver = mp.driver or "local"  # not HostConfig.VolumeDriver, as dockerd
        taken.add(mp.destination)
        points[mp.destination] = mp
    for path in image_volumes:
        destination = posixpath.normpath(path)
        if destination in points or destination in tmpfs:
            continue
        points[destination] = MountPoint(type="volume", destination=destination, copy_data=True)
    return list(points.values())


def oci_mounts(points: Iterable[MountPoint], tmpfs: dict[str, str]) -> list[dict[str, Any]]:
    """The OCI mounts for a plan whose volumes have their sources: binds as dockerd writes them
    (`rbind`, `ro`, the propagation), tmpfs with Docker's defaults."""
    result = []
    for destination, data in tmpfs.items():
        result.append({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                       "options": merge_tmpfs_options(data)})
    for mp in points:
        if mp.destination in tmpfs:
            continue  # HostConfig.Tmpfs wins over a mount point of the same path, as in dockerd
        if mp.type == "tmpfs":
            result.append({"destination": mp.destination, "type": "tmpfs", "source": "tmpfs",
                           "options": merge_tmpfs_options(mp.tmpfs_data)})
            continue
        options = ["bind" if mp.non_recursive else "rbind"]
        if not mp.rw:
            options.append("ro")
        if mp.propagation:
            options.append(mp.propagation)
        result.append({"destination": mp.destination, "type": "bind", "source": mp.source,
                       "options": options})
    return result


def sort_mounts(oci: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shallower destinations first (stable), so that `/etc` is mounted before `/etc/hosts`."""
    return sorted(oci, key=lambda m: len([p for p in m["destination"].split("/") if p]))


def propagation_error(mp: MountPoint, source_mount: str, optional_fields: str) -> str | None:
    """dockerd's ensureShared / ensureSharedOrSlave: a shared (slave) bind needs its source on a
    shared (shared or slave) mount; `optional_fields` are that mount's mountinfo tags."""
    tags = optional_fields.split()
    shared = any(t.startswith("shared:") for t in tags)
    if mp.propagation in ("shared", "rshared") and not shared:
        return f"path {mp.source} is mounted on {source_mount} but it is not a shared mount"
    if mp.propagation in ("slave", "rslave") and not shared \
            and not any(t.startswith("master:") for t in tags):
        return (f"path {mp.source} is mounted on {source_mount} but it is not a shared or slave "
                "mount")
    return None


def rootfs_propagation(points: Iterable[MountPoint]) -> str | None:
    """A shared (or slave) bind needs the container's root to propagate too, as dockerd sets."""
    kinds = {mp.propagation for mp in points if mp.type == "bind"}
    if kinds & {"shared", "rshared"}:
        return "shared"
    if kinds & {"slave", "rslave"}:
        return "rslave"
    return None
