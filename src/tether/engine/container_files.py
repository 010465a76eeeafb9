"""The verbs that read or write a container's files as a whole: `docker commit`, `docker export`
and `docker cp` (stat, copy out, copy in), each emitting its container event as dockerd does
(`commit`, `export`, `archive-path`, `extract-to-dir`).

The API routes only decode the request and encode the reply; what is touched, under which lock,
and which event says so is decided here. A running container's files are reached through an fd
of /proc/<pid>/root, a stopped one's through its overlay mounted for the duration
(engine/rootfs.py), with its volumes, binds and generated hosts files on it as dockerd mounts
them for an archive.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO, Callable, Iterator

from tether.engine import archive
from tether.rules import config as rules
from tether.engine import initlayer
from tether.engine.containers import ContainerService
from tether.engine.images import ImageService
from tether.engine.records import Container
from tether.engine.rootfs import mounted_overlay
from tether.rules.errors import Conflict
from tether.image import archive as image_archive
from tether.rules import refs
from tether.image.build.commit import commit_upper
from tether.image.changes import apply_changes
from tether.image.store import Image, container_config
from tether.runtime import mounts
from tether.runtime.rootfd import Root

log = logging.getLogger(__name__)
Writer = Callable[[BinaryIO], None]  # writes a tar into a file (run by a worker thread)


class ContainerFiles:
    """commit, export and the archive verbs of one daemon's containers."""

    def __init__(self, containers: ContainerService, images: ImageService) -> None:
        self.containers = containers
        self.images = images

    # ---- commit, export -------------------------------------------------------------------

    async def commit(self, ref: str, overrides: dict[str, Any], changes: list[str], repo: str,
                     tag: str, comment: str, author: str, pause: bool = True) -> Image:
        """`POST /commit`: the container's upper dir as a layer on its image, with `overrides`
        (the request's Config) and `changes` (Dockerfile instructions) applied to its config;
        tagged `repo[:tag]` when a repo is given. The `commit` event names the new image. With
        `pause` (the API's default) a running container is frozen for the commit, so that its
        processes cannot change the files half way through the copy: `pause`, `commit`,
        `unpause`, as dockerd, which goes on unfrozen when the pause fails."""
        c = self.containers.get(ref)
        given = (f"{repo}:{tag}" if tag else repo) if repo else ""
        if given:
            refs.normalize_tag(given)  # a bad reference is refused before the pause
        frozen = False
        if pause and c.state.status == "running" and not c.state.paused:
            try:
                await self.containers.admin.pause(c.id)
                frozen = True
            except Exception:  # as dockerd: the commit goes on unfrozen
                log.warning("commit of %s: pause failed", c.id, exc_info=True)
        try:
            return await self._commit(c, overrides, changes, given, comment, author)
        finally:
            if frozen:
                try:
                    await self.containers.admin.unpause(c.id)
                except Exception:  # gone or thawed meanwhile: the commit's result stands
                    log.warning("commit of %s: unpause failed", c.id, exc_info=True)

    async def _commit(self, c: Container, overrides: dict[str, Any], changes: list[str],
                      given: str, comment: str, author: str) -> Image:
        config = c.config.to_api(omit=False)
        if isinstance(overrides, dict) and overrides:
            config.update(rules.merge_image_config(overrides, c.config.to_api(omit=False)))
        config = apply_changes(container_config(config), changes)
        store = self.containers.images
        parent = await asyncio.to_thread(store.resolve, c.image_id)
        image = await asyncio.to_thread(commit_upper, store, self.containers.paths.upper(c.id),
                                        parent, config, c.config.to_api(), c.id, comment, author)
        if given:  # its `tag` event before the `commit`, as dockerd
            await self.images.tag(image.id, given)
        # dockerd's imageRef is the reference as given (no `:latest` added), in familiar form
        self.containers.emit(c, "commit", comment=comment, imageID=image.id,
                             imageRef=str(refs.parse_normalized(given)) if given else "")
        return image

    def export(self, ref: str) -> contextlib.AbstractAsyncContextManager[Writer]:
        """`GET /containers/{id}/export`: the container is found now (a 404 comes before any
        reply); entering the result mounts its overlay under its lifecycle lock, emits
        `export` and gives the tar writer, valid until the exit."""
        return self._exporting(self.containers.get(ref))

    @contextlib.asynccontextmanager
    async def _exporting(self, c: Container) -> AsyncIterator[Writer]:
        async with mounted_overlay(self.containers, c) as path:
            with Root.open(path) as root:  # a running container writes to the same upper dir
                self.containers.emit(c, "export")
                yield lambda out: image_archive.export_tree(root, out)

    # ---- docker cp --------------------------------------------------------------------------

    async def stat_path(self, ref: str, path: str) -> archive.PathStat:
        """`HEAD /containers/{id}/archive`: no event, as dockerd."""
        c = self.containers.get(ref)
        async with self._rootfs(c) as root:
            return await asyncio.to_thread(archive.stat_path, root, path, ref)

    @contextlib.asynccontextmanager
    async def read_archive(self, ref: str, path: str
                           ) -> AsyncIterator[tuple[archive.PathStat, Writer]]:
        """`GET /containers/{id}/archive`: the path's stat (a 404 for a missing one) and a
        writer of its tar, valid until the exit; `archive-path` is emitted once the path is
        found."""
        c = self.containers.get(ref)
        async with self._rootfs(c) as root:
            st = await asyncio.to_thread(archive.stat_path, root, path, ref)
            self.containers.emit(c, "archive-path")
            yield st, lambda out: archive.write_tar(root, path, archive.archive_name(path), out,
                                                    ref)

    async def extract(self, ref: str, path: str, source: BinaryIO,
                      no_overwrite_dir_non_dir: bool) -> None:
        """`PUT /containers/{id}/archive`: a tar extracted under `path` (dockerd's refusals for
        a read-only destination first), then `extract-to-dir`."""
        c = self.containers.get(ref)
        archive.check_writable(c.mount_points, c.host_config.readonly_rootfs, path)
        async with self._rootfs(c) as root:
            await asyncio.to_thread(archive.extract_tar, root, path, ref, source,
                                    no_overwrite_dir_non_dir)
        self.containers.emit(c, "extract-to-dir")

    # ---- the root filesystem, mounted for the duration when the container is stopped --------

    @contextlib.asynccontextmanager
    async def _rootfs(self, c: Container) -> AsyncIterator[Root]:
        """An fd of the container's root as its processes see it. Running: /proc/<pid>/root
        opened once (the root of its mount namespace, with its volumes, binds and the
        bind-mounted hosts, hostname and resolv.conf). Stopped: its overlay with its volumes and
        binds on it, mounted for the duration (engine/rootfs.py)."""
        if c.state.status == "running" and c.state.pid:
            with self._running_root(c) as root:
                yield root
            return
        async with mounted_overlay(self.containers, c) as path:
            if c.state.status == "running" and c.state.pid:  # started while we waited
                with self._running_root(c) as root:
                    yield root
                return
            bound: list[int] = []
            with Root.open(path) as root:
                try:
                    await asyncio.to_thread(self._bind_network_files, c, root, bound)
                    async with self.containers.container_mounts.volumes_mounted_at(c, root):
                        yield root
                finally:
                    for mount in reversed(bound):
                        await asyncio.to_thread(mounts.unmount_at, mount)

    @contextlib.contextmanager
    def _running_root(self, c: Container) -> Iterator[Root]:
        """The root of a running container's mount namespace, by an fd of /proc/<pid>/root
        checked to be its overlay (the same inode as its rootfs mount here): a pid the
        container no longer has, reused by another process, must not hand out that process's
        root. A container gone meanwhile is a 409."""
        try:
            root = Root.open(Path(f"/proc/{c.state.pid}/root"))
        except (FileNotFoundError, ProcessLookupError):
            raise Conflict(f"Container {c.id} is not running") from None
        with root:
            held, own = os.fstat(root.fd), os.stat(self.containers.paths.rootfs(c.id))
            if (held.st_dev, held.st_ino) != (own.st_dev, own.st_ino):
                raise Conflict(f"Container {c.id} is not running")
            yield root

    def _bind_network_files(self, c: Container, root: Root, bound: list[int]) -> None:
        """hosts, hostname and resolv.conf over their mount points, as dockerd mounts them for a
        stopped container's archive: onto an fd of each point resolved inside the root, when it
        is a regular file. `bound` lists the mounts as they are made, so that a failure
        half-way still unmounts what was bound."""
        base = self.containers.paths.container(c.id)
        for point in initlayer.MOUNT_POINTS:
            source = base / Path(point).name
            if not source.is_file():
                continue
            target = root.regular_file(point, follow_last=False)
            if target is None:
                continue
            try:
                bound.append(mounts.bind_at(source, target, read_only=False, recursive=False))
            finally:
                os.close(target)
