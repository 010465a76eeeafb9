"""A container's mounts over its life: the plan made at create (volumes created, new ones seeded
from the image), the OCI mounts of each start, their release at each exit, the anonymous volumes
that go with the container, and the mounts `docker cp` needs on a stopped container.

Kept apart from the container service, which decides when each step happens; this module knows
how, through the volume service (mounts of `--opt` volumes, use counts) and the image store.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import stat
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from tether.engine import mountspec, shared_ns
from tether.engine.events import EventBus
from tether.engine.mountspec import MountError, MountPoint
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.engine.volumes import VolumeService
from tether.image.store import ImageStore
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound
from tether.runtime import mounts
from tether.runtime import rootfd
from tether.runtime.rootfd import Root
from tether.spec.types import Config, HostConfig

log = logging.getLogger("tether.containers")

NETWORK_FILES = ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts")


class ContainerMounts:
    """The mounts of one daemon's containers. Methods run on the daemon's event loop thread."""

    def __init__(self, paths: Paths, images: ImageStore, volumes: VolumeService,
                 events: EventBus) -> None:
        self.paths = paths
        self.images = images
        self.volumes = volumes
        self.events = events

    def plan(self, host_config: HostConfig, config: Config,
             lookup: Callable[[str], Container]) -> list[MountPoint]:
        """The container's mount points: --volumes-from (its containers found by `lookup`),
        binds, mounts, then the image's and Config's volumes (dockerd's registerMountPoints),
        refused with its texts."""
        try:
            inherited = []
            for spec_ in host_config.volumes_from or []:
                ref, mode = mountspec.parse_volumes_from(spec_)
                try:
                    other = lookup(ref)
                except NotFound as exc:  # dockerd answers 400 here
                    raise BadRequest(exc.message) from None
                inherited += [mountspec.inherited(mp, mode) for mp in other.mount_points]
            return mountspec.plan(host_config.binds or [], host_config.mounts or [],
                                  host_config.tmpfs or {}, inherited,
                                  (config.volumes or {}).keys(), os.path.exists)
        except MountError as exc:
            raise ApiError(str(exc), exc.status) from None

    def create_volumes(self, points: list[MountPoint], default_driver: str = "") -> None:
        """Create (or find) each planned volume: a named one may exist already, an anonymous
        one gets a random name; the mount point learns its name, driver and directory. One
        taken by --volumes-from (it has its directory already) must still exist. The volumes
        of Binds and Config.Volumes are the `default_driver`'s (HostConfig.VolumeDriver), as
        in dockerd; a Mounts entry names its own driver or gets the local one."""
        for mp in points:
            if mp.type != "volume":
                continue
            if mp.source:
                self.volumes.get(mp.name)
                continue
            options = mp.volume_options
            volume = self.volumes.create(mp.name or None, mp.driver or default_driver or "local",
                                         options.get("DriverOpts"), options.get("Labels"),
                                         anonymous=mp.anonymous)
            mp.name, mp.driver, mp.source = volume.name, volume.driver, str(volume.mountpoint)

    async def copy_up(self, c: Container, lower_dirs: Callable[[Container], list[Path]]) -> None:
        """Seed each new, empty volume with what the image has at its path (dockerd's
        populateVolumes): the container's root (`lower_dirs`: its init layer and the image's
        layers) is mounted for the copy only. As dockerd, an
        anonymous volume of Config.Volumes (`-v /path`, an image VOLUME) may not cover a file of
        the image, checked before anything is copied."""
        wanted = [mp for mp in c.mount_points if mp.type == "volume" and mp.copy_data]
        if not wanted:
            return
        rootfs = self.paths.rootfs(c.id)
        lowers = await asyncio.to_thread(lower_dirs, c)
        mounts.mount_overlay(lowers, self.paths.upper(c.id), self.paths.work(c.id), rootfs)
        try:
            with Root.open(rootfs) as root:
                sources = [(mp, _open_source(root, mp.destination)) for mp in wanted]
                try:
                    await self._seed(c, rootfs, root, sources)
                finally:
                    for _, fd in sources:
                        if fd is not None:
                            os.close(fd)
        finally:
            await asyncio.to_thread(mounts.unmount, rootfs)

    async def _seed(self, c: Container, rootfs: Path, root: Root,
                    sources: list[tuple[MountPoint, int | None]]) -> None:
        """copy_up's copies, each from an fd of the image's directory (never its path)."""
        declared = {posixpath.normpath(v) for v in c.config.volumes or {}}

        def shown(destination: str) -> Path:  # dockerd names the path under the root's mount
            return rootfs / root.resolve(destination).lstrip("/")
        for mp, fd in sources:
            if mp.anonymous and mp.destination in declared and fd is not None \
                    and not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise ApiError("cannot mount volume over existing file, file exists "
                               f"{shown(mp.destination)}", 500)
        for mp, fd in sources:
            if fd is None:  # as dockerd: nothing to seed, the volume is not mounted
                continue
            try:
                await asyncio.to_thread(_copy_into_empty, fd, shown(mp.destination),
                                        self.volumes.mount(mp.name, c.id))
            finally:  # a failed copy must not leave the volume mounted for a container
                self.volumes.unmount(mp.name, c.id)

    def oci_mounts(self, c: Container) -> list[dict[str, Any]]:
        """The OCI mounts of a starting container: its volumes made ready (mounted if they
        need it), a missing `-v` host directory created (0755, as dockerd), tmpfs options
        merged; the hosts, hostname and resolv.conf binds unless the user mounts those paths,
        read-only with a read-only root (as dockerd). Each volume gets dockerd's `mount` event."""
        points = []
        for mp in c.mount_points:
            if mp.type == "volume":
                mp.source = str(self.volumes.mount(mp.name, c.id))
                self.events.publish("volume", "mount", mp.name, {
                    "container": c.id, "destination": mp.destination, "driver": mp.driver,
                    "propagation": mp.propagation, "read/write": str(mp.rw).lower()})
            elif mp.type == "bind":
                if mp.create_source:
                    try:
                        os.makedirs(mp.source, 0o755, exist_ok=True)
                    except (FileExistsError, NotADirectoryError):
                        pass  # a file: bound as it is
                problem = mountspec.propagation_error(mp, *mounts.source_mount(mp.source))
                if problem:
                    raise ApiError(problem, 500)
            points.append(mp)
        try:
            user = mountspec.oci_mounts(points, c.host_config.tmpfs or {})
        except MountError as exc:
            raise ApiError(str(exc), exc.status) from None
        taken = {m["destination"] for m in user}
        base = self.paths.container(shared_ns.files_owner(c))  # a network donor's files
        read_only = c.host_config.readonly_rootfs
        files_ = [{"destination": dest, "type": "bind",
                   "source": str(base / posixpath.basename(dest)),
                   "options": ["rbind", *(["ro"] if read_only else []), "rprivate"]}
                  for dest in NETWORK_FILES if dest not in taken]
        return mountspec.sort_mounts(user + files_)

    def release(self, c: Container) -> None:
        """A run ended (or a copy was made): the container no longer uses its volumes."""
        for mp in c.mount_points:
            if mp.type == "volume":
                self.volumes.unmount(mp.name, c.id)

    def remove_anonymous(self, points: list[MountPoint]) -> None:
        """`rm -v` (or a failed create): the container's anonymous volumes go; one still used by
        another container stays (not an error, as dockerd), a named one is never touched."""
        for mp in points:
            if not mp.anonymous or not mp.name:
                continue
            try:
                self.volumes.remove(mp.name)
            except (Conflict, NotFound) as exc:
                log.info("anonymous volume kept", extra={"ctx": {"volume": mp.name,
                                                                 "reason": exc.message}})

    @contextlib.asynccontextmanager
    async def volumes_mounted_at(self, c: Container, root: Root) -> AsyncIterator[None]:
        """A stopped container's volumes and binds on its mounted root (an fd of it), for
        docker cp (as dockerd's mountVolumes): private binds, read-only where the mount is,
        each onto an fd of its target resolved inside the root, undone after."""
        done: list[int] = []
        try:
            for m in self.oci_mounts(c):
                if m["type"] != "bind":
                    continue
                source = Path(m["source"])
                target = await asyncio.to_thread(_mount_target, root, m["destination"],
                                                 source.is_dir())
                try:
                    done.append(await asyncio.to_thread(
                        mounts.bind_at, source, target, "ro" in m["options"],
                        m["options"][0] == "rbind"))
                finally:
                    os.close(target)
            yield
        finally:
            for mount in reversed(done):
                await asyncio.to_thread(mounts.unmount_at, mount)
            self.release(c)

    def reacquire(self, c: Container) -> None:
        """After a daemon restart, the volume service learns a running container's volumes
        are in use again. One gone behind our back is logged: the daemon must still start."""
        for mp in c.mount_points:
            if mp.type == "volume":
                try:
                    self.volumes.mount(mp.name, c.id)
                except ApiError as exc:
                    log.warning("volume of a running container lost", extra={"ctx": {
                        "id": c.id, "volume": mp.name, "error": exc.message}})


def _open_source(root: Root, destination: str) -> int | None:
    """An O_PATH fd of what the image has at a volume's destination (links followed inside
    the root), None when it has nothing there."""
    try:
        return root.open_at(destination, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _resolved(rootfs: Path, path: str) -> str:
    """A container path with its symlinks resolved inside a stopped container's root."""
    with Root.open(rootfs) as root:
        return root.resolve(path)


def _mount_target(root: Root, destination: str, directory: bool) -> int:
    """An O_PATH fd of a mount's destination in the root, made when missing: a directory for
    a directory source, else an empty file (its parents made)."""
    if directory:
        return root.makedirs(destination, 0o777)
    try:
        return root.open_at(destination, os.O_PATH)
    except FileNotFoundError:
        pass
    parent_path, name = rootfd.split(destination)
    parent = root.makedirs(parent_path, 0o777)
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                         dir_fd=parent))
    finally:
        os.close(parent)
    return root.open_at(destination, os.O_PATH)


def _copy_into_empty(source: int, shown: Path, volume: Path) -> None:
    """Copy a directory's content, owners, modes, times and links into an empty volume, and
    give the volume the directory's owner and mode (dockerd's copyExistingContents). Nothing
    happens when the volume already holds data; a file of the image there is refused then only,
    as dockerd does. `source` is an O_PATH fd of the directory (`shown` names it in messages):
    `cp` reads it through its own /proc/self/fd, so no path in the image is looked up again."""
    if any(volume.iterdir()):
        return
    st = os.fstat(source)
    if not stat.S_ISDIR(st.st_mode):
        raise ApiError(f"source {shown} is not directory", 500)
    copy = subprocess.run(["cp", "-a", "--", f"/proc/self/fd/{source}/.", f"{volume}/"],
                          capture_output=True, text=True, pass_fds=(source,))
    if copy.returncode:  # dockerd's text around the copier's (a full volume, say)
        raise ApiError(f"failed to copy files: {copy.stderr.strip()}", 500)
    os.chown(volume, st.st_uid, st.st_gid)
    os.chmod(volume, stat.S_IMODE(st.st_mode))
