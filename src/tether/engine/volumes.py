"""Volumes: the local driver, the volume records, and the mounts that `--opt` asks for.

A volume is a directory under the data root, `<root>/<name>/_data`, that containers bind; its
record, `<root>/<name>/volume.json`, is written atomically so that a daemon killed at any instant
finds every volume whole. A volume made with `--opt type=...,device=...,o=...` is mounted on its
`_data` directory while at least one container uses it, as Docker's local driver does; a plain one
is just the directory, so its data outlives every container and daemon restart.

Who uses a volume is the containers service's knowledge, not ours: `referrers` is set by the daemon
to a function that lists the IDs of the containers (running or not) that refer to a volume. It
decides `dangling`, the in-use refusal of `remove` and the RefCount of `system df`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tether.engine import volume_rules as rules
from tether.engine.diskusage import directory_size
from tether.engine.events import EventBus
from tether.engine.paths import VOLUME_DIR_MODE
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound, go_errno_text
from tether.runtime.mounts import is_mounted, unmount
from tether.runtime.mounts import mount as mount_syscall
from tether.state import read_json, remove_stale_temp_files, write_json_atomic

log = logging.getLogger("tether.volumes")
RECORD = "volume.json"
DATA = "_data"
# A removed volume's directory is renamed to this prefix before it is erased; volume names
# cannot start with a dot, so it never collides with one.
TRASH_PREFIX = ".removing-"


def rfc3339_now() -> str:
    """Go's time.RFC3339 of the local time (seconds, `Z` or `+hh:mm`), as the local driver shows
    CreatedAt."""
    stamp = datetime.now().astimezone().replace(microsecond=0)
    text = stamp.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass
class Volume:
    """One volume's record. `labels` and `options` keep whether the client sent them at all
    (None shows as `null` in inspect, `{}` as `{}`), as dockerd stores what it was given."""

    name: str
    driver: str
    labels: dict[str, str] | None
    options: dict[str, str] | None
    created_at: str
    mountpoint: Path = field(compare=False)

    @property
    def anonymous(self) -> bool:
        """Made for a container (`-v /path`, an image VOLUME): marked by Docker's label."""
        return rules.ANONYMOUS_LABEL in (self.labels or {})

    def record(self) -> dict[str, Any]:
        return {"Name": self.name, "Driver": self.driver, "Labels": self.labels,
                "Options": self.options, "CreatedAt": self.created_at}

    def inspect(self) -> dict[str, Any]:
        """`GET /volumes/{name}`: Docker's Volume object (its maps in key order, as Go
        encodes them)."""
        return {"CreatedAt": self.created_at, "Driver": self.driver,
                "Labels": _key_order(self.labels), "Mountpoint": str(self.mountpoint),
                "Name": self.name, "Options": _key_order(self.options), "Scope": "local"}


def _key_order(mapping: dict[str, str] | None) -> dict[str, str] | None:
    return None if mapping is None else dict(sorted(mapping.items()))


class VolumeService:
    """The volumes of one daemon. Methods run on the daemon's event loop thread (as the
    containers service, whose `referrers` they call); the slow parts (erasing data, size walks)
    go to worker threads."""

    def __init__(self, root: Path, events: EventBus | None = None) -> None:
        self.root = Path(root)
        self.events = events
        self.referrers: Callable[[str], list[str]] = lambda name: []
        self._volumes: dict[str, Volume] = {}
        self._users: dict[str, set[str]] = {}
        self.load()

    # ---- records ----------------------------------------------------------------------------

    def load(self) -> None:
        """Read every record under the root; a directory without a whole record (a create that
        was killed before its record landed) is not a volume; one renamed aside for removal is
        finished off."""
        self.root.mkdir(parents=True, exist_ok=True)
        volumes: dict[str, Volume] = {}
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(TRASH_PREFIX):
                _erase(entry)
                continue
            if not entry.is_dir():
                continue
            remove_stale_temp_files(entry)
            try:
                rec = read_json(entry / RECORD)
                volumes[rec["Name"]] = self._volume(rec)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # never stops the daemon
                if (entry / RECORD).exists():
                    log.error("unreadable volume record ignored", extra={"ctx": {
                        "dir": str(entry), "error": repr(exc)}})
        self._volumes = volumes

    def _volume(self, rec: dict[str, Any]) -> Volume:
        return Volume(name=rec["Name"], driver=rec["Driver"], labels=rec.get("Labels"),
                      options=rec.get("Options"), created_at=rec["CreatedAt"],
                      mountpoint=self.root / rec["Name"] / DATA)

    def _emit(self, action: str, actor: str, attributes: dict[str, str]) -> None:
        if self.events is not None:
            self.events.publish("volume", action, actor, attributes)

    # ---- create, get, list ------------------------------------------------------------------

    def create(self, name: str | None = None, driver: str = "local",
               driver_opts: dict[str, str] | None = None, labels: dict[str, str] | None = None,
               anonymous: bool = False) -> Volume:
        """Make a volume, or return the existing one of that name (Docker ignores the new labels
        and options then). No name: a random 64-hex one. `anonymous` adds Docker's label that
        `volume prune` looks for."""
        name = name or secrets.token_hex(32)
        driver = driver or rules.LOCAL_DRIVER
        if driver != rules.LOCAL_DRIVER:  # looked up first, even for an existing name
            raise NotFound(f"create {name}: error looking up volume plugin {driver}: "
                           f'plugin "{driver}" not found')
        existing = self._volumes.get(name)
        if existing is not None:
            return existing
        problem = rules.name_error(name) or rules.options_error(driver_opts or {})
        if problem:
            raise BadRequest(f"create {name}: {problem}")
        if anonymous:
            labels = {**(labels or {}), rules.ANONYMOUS_LABEL: ""}
        volume = Volume(name=name, driver=driver, labels=labels, options=driver_opts,
                        created_at=rfc3339_now(), mountpoint=self.root / name / DATA)
        self._make_dirs(volume)
        write_json_atomic(self.root / name / RECORD, volume.record())
        self._volumes[name] = volume
        self._emit("create", name, {"driver": driver})
        return volume

    def _make_dirs(self, volume: Volume) -> None:
        base = volume.mountpoint.parent
        try:
            base.mkdir(mode=VOLUME_DIR_MODE, exist_ok=True)  # may be left by a create killed mid-way
            volume.mountpoint.mkdir(mode=0o755, exist_ok=True)
        except OSError as exc:
            shutil.rmtree(base, ignore_errors=True)
            reason = go_errno_text(exc)
            raise ApiError(f"create {volume.name}: error while creating volume root path "
                           f"'{base}': mkdir {exc.filename}: {reason}") from None

    def get(self, name: str) -> Volume:
        volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def list(self, filters: dict[str, list[str]]) -> list[Volume]:
        """`GET /volumes`, in name order; filters `dangling`, `driver`, `label`, `name`."""
        test = rules.list_predicate(filters, lambda name: bool(self.referrers(name)))
        volumes = sorted(self._volumes.values(), key=lambda v: v.name)
        return [v for v in volumes if test(v.name, v.driver, v.labels or {})]

    # ---- mounts -----------------------------------------------------------------------------

    def mount(self, name: str, container_id: str) -> Path:
        """Make the volume ready for a starting container and return the directory to bind.
        A volume with `--opt`s is mounted on first use (or found mounted, after a daemon
        restart); errors carry Docker's wording."""
        volume = self.get(name)
        request = rules.mount_request(volume.options or {})
        if request is not None and not is_mounted(volume.mountpoint):
            self._mount(volume, request)
        self._users.setdefault(name, set()).add(container_id)
        return volume.mountpoint

    def _mount(self, volume: Volume, request: rules.MountRequest) -> None:
        """mount(2) as moby/sys/mount does it: the mount, then a propagation change, then the
        read-only remount a bind needs."""
        prefix = f"error while mounting volume '{volume.mountpoint}': "
        if not request.device:
            raise ApiError(prefix + "missing device in volume options")
        volume.mountpoint.mkdir(parents=True, exist_ok=True)
        target = str(volume.mountpoint)
        main_flags = request.flags & ~rules.PROPAGATION_FLAGS
        calls = [(request.device, request.fstype, main_flags, request.data)]
        if request.flags & rules.PROPAGATION_FLAGS:
            calls.append(("", "", request.flags & (rules.PROPAGATION_FLAGS | rules.MS_REC), ""))
        if request.remount_read_only:
            calls.append(("", "", main_flags | rules.MS_REMOUNT, ""))
        for index, (device, fstype, flags, data) in enumerate(calls):
            try:
                mount_syscall(device, volume.mountpoint, fstype, flags, data)
            except OSError as exc:
                if index:  # a later call failed: do not leave a half-made mount behind
                    unmount(volume.mountpoint)
                err = go_errno_text(exc)
                raise ApiError(prefix + "failed to mount local volume: " + rules.mount_error_text(
                    "mount", device, target, flags, data, err)) from None

    def unmount(self, name: str, container_id: str) -> None:
        """A container that used the volume stopped; the last one out unmounts an `--opt`
        volume. Unknown names and users are ignored: a stop must not fail on a removed volume."""
        users = self._users.get(name)
        if users is None or container_id not in users:
            return
        users.discard(container_id)
        volume = self._volumes.get(name)
        if not users:
            del self._users[name]
            if volume is not None and rules.mount_request(volume.options or {}) is not None:
                unmount(volume.mountpoint)
        if volume is not None:
            self._emit("unmount", name, {"container": container_id, "driver": volume.driver})

    def unmount_unused(self) -> None:
        """Unmount each `--opt` volume that no container uses. The daemon calls it once the
        containers are reloaded (their users known again): a daemon killed while a container
        used the volume, or mid-way through a copy-up, left it mounted with nobody to release
        it, and its next user must get a fresh mount (a new tmpfs), as after a clean stop."""
        for volume in self._volumes.values():
            if volume.name not in self._users \
                    and rules.mount_request(volume.options or {}) is not None:
                unmount(volume.mountpoint)

    # ---- removal, usage ---------------------------------------------------------------------

    def remove(self, name: str, force: bool = False) -> None:
        """`DELETE /volumes/{name}`: refused while any container refers to it; `force` only
        silences "no such volume" (as in dockerd, it does not override the in-use check).
        The data is erased by a worker thread: a big volume must not stall the daemon."""
        if name not in self._volumes:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        users = self.referrers(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        driver = self._volumes[name].driver
        trash = self._delete(name)
        self._emit("destroy", name, {"driver": driver})
        try:
            asyncio.get_running_loop().run_in_executor(None, _erase, trash)
        except RuntimeError:  # no loop (tests, tools): erase now
            _erase(trash)

    def _delete(self, name: str) -> Path:
        """Forget a volume at once: its record goes first (a daemon killed now never reloads a
        half-erased volume), then its directory is renamed aside; returns where it now is."""
        volume = self._volumes.pop(name)
        self._users.pop(name, None)
        unmount(volume.mountpoint)
        (self.root / name / RECORD).unlink(missing_ok=True)
        trash = self.root / f"{TRASH_PREFIX}{name}-{secrets.token_hex(4)}"
        try:
            os.rename(self.root / name, trash)
        except FileNotFoundError:  # its directory was deleted behind our back: nothing to erase
            pass
        return trash

    async def prune(self, filters: dict[str, list[str]],
                    api_version: tuple[int, int] = (1, 44)) -> tuple[list[str], int]:
        """`POST /volumes/prune`: remove unused plain local volumes that pass the filters (since
        API 1.42 only anonymous ones unless `all`); returns the names and the bytes reclaimed.
        A volume with `--opt`s is never pruned, as in dockerd: its data may be someone else's
        device. Which volumes go is decided at once; sizing and erasing happen in a thread."""
        test = rules.prune_predicate(filters, api_version)
        victims = sorted(v.name for v in self._volumes.values()
                         if _plain(v) and test(v.labels or {}) and not self.referrers(v.name))
        trashes = [self._delete(name) for name in victims]  # no destroy events: dockerd's prune
        # logs only its `prune` event (checked on Docker 20.10)
        reclaimed = await asyncio.to_thread(lambda: sum(_erase(t) for t in trashes))
        self._emit("prune", "", {"reclaimed": str(reclaimed)})
        return victims, reclaimed

    async def disk_usage(self) -> list[dict[str, Any]]:
        """`GET /system/df` "Volumes": each plain local volume (dockerd leaves out those with
        `--opt`s, whose size is a device's) with its size and how many containers use it."""
        volumes = sorted(filter(_plain, self._volumes.values()), key=lambda v: v.name)
        counts = [len(self.referrers(v.name)) for v in volumes]
        sizes = await asyncio.to_thread(lambda: [directory_size(v.mountpoint) for v in volumes])
        return [{**v.inspect(), "UsageData": {"Size": size, "RefCount": count}}
                for v, size, count in zip(volumes, sizes, counts)]


def _erase(path: Path) -> int:
    """Delete a removed volume's directory; returns the bytes it held."""
    size = directory_size(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def _plain(volume: Volume) -> bool:
    """A local volume that is just its directory, without `--opt`s."""
    return volume.driver == rules.LOCAL_DRIVER and not volume.options
