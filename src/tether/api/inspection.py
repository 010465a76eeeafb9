"""Routes that look into a container: `docker cp` (archive), `diff`, `top` and `stats`."""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator

from tether.api.http import Request, Response, Router, StreamResponse, json_response
from tether.api.piped import written_chunks
from tether.engine import changes, procs
from tether.engine.container_files import ContainerFiles
from tether.engine.containers import ContainerService
from tether.engine.records import Container
from tether.rules.errors import BadRequest, Conflict

_STATS_INTERVAL = 1.0  # dockerd's collector period: the CPU % is over one such interval


class InspectionRoutes:
    def __init__(self, service: ContainerService, files: ContainerFiles) -> None:
        self.service = service
        self.files = files

    def register(self, router: Router) -> None:
        add = router.add
        add("HEAD", "/containers/{id:path}/archive", self.stat_path)
        add("GET", "/containers/{id:path}/archive", self.get_archive)
        add("PUT", "/containers/{id:path}/archive", self.put_archive)
        add("GET", "/containers/{id:path}/changes", self.changes)
        add("GET", "/containers/{id:path}/top", self.top)
        add("GET", "/containers/{id:path}/stats", self.stats)

    # ---- docker cp --------------------------------------------------------------------------

    @staticmethod
    def _path(req: Request) -> str:
        path = req.q("path") or ""
        if not path:
            raise BadRequest("path cannot be empty")
        return path

    async def stat_path(self, req: Request) -> Response:
        st = await self.files.stat_path(req.params["id"], self._path(req))
        return Response(200, headers={"X-Docker-Container-Path-Stat": st.header()})

    async def get_archive(self, req: Request) -> StreamResponse:
        """The tar is made by a thread into a pipe and sent as it comes; the stat header (and a
        404 for a missing path) are settled before the response starts."""
        reading = self.files.read_archive(req.params["id"], self._path(req))
        st, write = await reading.__aenter__()

        async def body() -> AsyncIterator[bytes]:
            try:  # the writer thread has ended (aclosing) before the root's fd is closed
                async with contextlib.aclosing(written_chunks(write)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            finally:
                await reading.__aexit__(None, None, None)
        return StreamResponse(body(), "application/x-tar",
                              headers={"X-Docker-Container-Path-Stat": st.header()})

    async def put_archive(self, req: Request) -> Response:
        await self.files.extract(req.params["id"], self._path(req), req.body_stream(),
                                 req.qbool("noOverwriteDirNonDir"))
        return Response(200)

    # ---- diff, top, stats -------------------------------------------------------------------

    async def changes(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        lowers = await asyncio.to_thread(self.service.resources.lower_dirs, c)
        found = await asyncio.to_thread(changes.overlay_changes, self.service.paths.upper(c.id),
                                        lowers)
        return json_response([change.to_json() for change in found])

    def _running(self, c: Container) -> None:
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")

    async def top(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        self._running(c)
        listing = await procs.top(self.service.runtime.cgroup_paths(c.id),
                                  req.q("ps_args") or "-ef")
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
        paths = self.service.runtime.cgroup_paths(c.id)

        def take(previous: dict | None) -> dict:
            return procs.sample(c.id, c.name, c.state.pid, paths, with_networks, previous)
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
