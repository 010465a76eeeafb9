"""Routes that look into a container: `docker cp` (archive), `diff`, `top` and `stats`."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import AsyncIterator, Iterator

from tether.api.http import Request, Response, Router, StreamResponse, json_response
from tether.api.piped import written_chunks
from tether.engine import archive, changes, initlayer, procs
from tether.engine.containers import ContainerService
from tether.engine.records import Container
from tether.engine.rootfs import mounted_overlay
from tether.rules.errors import BadRequest, Conflict
from tether.runtime import mounts
from tether.runtime.rootfd import Root

_STATS_INTERVAL = 1.0  # dockerd's collector period: the CPU % is over one such interval


class InspectionRoutes:
    def __init__(self, service: ContainerService) -> None:
        self.service = service

    def register(self, router: Router) -> None:
        add = router.add
        add("HEAD", "/containers/{id:path}/archive", self.stat_path)
        add("GET", "/containers/{id:path}/archive", self.get_archive)
        add("PUT", "/containers/{id:path}/archive", self.put_archive)
        add("GET", "/containers/{id:path}/changes", self.changes)
        add("GET", "/containers/{id:path}/top", self.top)
        add("GET", "/containers/{id:path}/stats", self.stats)

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
        async with mounted_overlay(self.service, c) as path:
            if c.state.status == "running" and c.state.pid:  # started while we waited
                with self._running_root(c) as root:
                    yield root
                return
            bound: list[int] = []
            with Root.open(path) as root:
                try:
                    await asyncio.to_thread(self._bind_network_files, c, root, bound)
                    async with self.service.container_mounts.volumes_mounted_at(c, root):
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
            held, own = os.fstat(root.fd), os.stat(self.service.paths.rootfs(c.id))
            if (held.st_dev, held.st_ino) != (own.st_dev, own.st_ino):
                raise Conflict(f"Container {c.id} is not running")
            yield root

    def _bind_network_files(self, c: Container, root: Root, bound: list[int]) -> None:
        """hosts, hostname and resolv.conf over their mount points, as dockerd mounts them for a
        stopped container's archive: onto an fd of each point resolved inside the root, when it
        is a regular file. `bound` lists the mounts as they are made, so that a failure
        half-way still unmounts what was bound."""
        base = self.service.paths.container(c.id)
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

    # ---- docker cp --------------------------------------------------------------------------

    @staticmethod
    def _path(req: Request) -> str:
        path = req.q("path") or ""
        if not path:
            raise BadRequest("path cannot be empty")
        return path

    async def stat_path(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        async with self._rootfs(c) as root:
            st = await asyncio.to_thread(archive.stat_path, root, self._path(req),
                                         req.params["id"])
        return Response(200, headers={"X-Docker-Container-Path-Stat": st.header()})

    async def get_archive(self, req: Request) -> StreamResponse:
        """The tar is made by a thread into a pipe and sent as it comes; the stat header (and a
        404 for a missing path) are settled before the response starts."""
        c = self.service.get(req.params["id"])
        path = self._path(req)
        ctx = self._rootfs(c)
        root = await ctx.__aenter__()
        try:
            st = await asyncio.to_thread(archive.stat_path, root, path, req.params["id"])
        except BaseException:
            await ctx.__aexit__(None, None, None)
            raise
        self.service.emit(c, "archive-path")

        async def body() -> AsyncIterator[bytes]:
            try:  # the writer thread has ended (aclosing) before the root's fd is closed
                async with contextlib.aclosing(written_chunks(lambda out: archive.write_tar(
                        root, path, archive.archive_name(path), out, req.params["id"]))) as chunks:
                    async for chunk in chunks:
                        yield chunk
            finally:
                await ctx.__aexit__(None, None, None)
        return StreamResponse(body(), "application/x-tar",
                              headers={"X-Docker-Container-Path-Stat": st.header()})

    async def put_archive(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        path = self._path(req)
        archive.check_writable(c.mount_points, bool(c.host_config.get("ReadonlyRootfs")), path)
        async with self._rootfs(c) as root:
            await asyncio.to_thread(archive.extract_tar, root, path, req.params["id"],
                                    req.body_stream(), req.qbool("noOverwriteDirNonDir"))
        self.service.emit(c, "extract-to-dir")
        return Response(200)

    # ---- diff, top, stats -------------------------------------------------------------------

    async def changes(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        lowers = await asyncio.to_thread(self.service.lower_dirs, c)
        found = await asyncio.to_thread(changes.overlay_changes, self.service.paths.upper(c.id),
                                        lowers)
        return json_response([change.to_json() for change in found])

    def _running(self, c: Container) -> None:
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")

    async def top(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        self._running(c)
        listing = await procs.top(c.id, req.q("ps_args") or "-ef")
        self.service.emit(c, "top")
        return json_response(listing)

    async def stats(self, req: Request) -> StreamResponse | Response:
        """stream=false answers the second sample (so precpu is one interval old), as dockerd."""
        c = self.service.get(req.params["id"])
        stream = req.qbool("stream", True)
        if c.state.status != "running":
            if not stream:
                return json_response(procs.empty_stats(c.id, c.name))
            raise Conflict(f"Container {c.id} is not running")
        with_networks = c.network_mode != "host"

        def take(previous: dict | None) -> dict:
            return procs.sample(c.id, c.name, c.state.pid, with_networks, previous)
        first = take(None)
        if not stream:
            await asyncio.sleep(_STATS_INTERVAL)
            return json_response(take(first))

        async def body() -> AsyncIterator[bytes]:
            previous = first
            yield json.dumps(first).encode() + b"\n"
            while c.state.status == "running":
                await asyncio.sleep(_STATS_INTERVAL)
                try:
                    previous = take(previous)
                except (FileNotFoundError, BadRequest):
                    return  # the cgroup went away with the container
                yield json.dumps(previous).encode() + b"\n"
        return StreamResponse(body(), "application/json")
