"""Container routes of the Engine API: HTTP in, service calls, Docker's JSON out."""
from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

from tether.rules import apitypes, detachkeys, log_options
from tether.api.http import Hijack, HijackedConn, Request, Response, Router, StreamResponse, \
    api_version, json_response, no_content
from tether.api.pump import Outcome, pump
from tether.api.streams import attach_content_type, frame, logs_content_type
from tether.engine.containers import ContainerService
from tether.engine.logs import LogQuery, log_entries
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound


class ContainerRoutes:
    def __init__(self, service: ContainerService) -> None:
        self.service = service

    def register(self, router: Router) -> None:
        add = router.add
        add("POST", "/containers/create", self.create)
        add("GET", "/containers/json", self.list)
        add("GET", "/containers/{id:path}/json", self.inspect)
        add("POST", "/containers/{id:path}/start", self.start)
        add("POST", "/containers/{id:path}/stop", self.stop)
        add("POST", "/containers/{id:path}/restart", self.restart)
        add("POST", "/containers/{id:path}/kill", self.kill)
        add("POST", "/containers/{id:path}/wait", self.wait)
        add("POST", "/containers/{id:path}/rename", self.rename)
        add("POST", "/containers/{id:path}/resize", self.resize)
        add("POST", "/containers/{id:path}/attach", self.attach)
        add("POST", "/containers/{id:path}/pause", self.pause)
        add("POST", "/containers/{id:path}/unpause", self.unpause)
        add("POST", "/containers/{id:path}/update", self.update)
        add("GET", "/containers/{id:path}/logs", self.logs)
        add("DELETE", "/containers/{id:path}", self.remove)
        add("GET", "/containers/{id:path}/links", self.links)
        add("GET", "/tether/links", self.all_links)

    async def create(self, req: Request) -> Response:
        body = req.json_as(apitypes.CONTAINER_CREATE)
        # Go leaves the wrapper's embedded *Config nil unless the body sets one of its fields
        if body is None or not body.keys() & apitypes.CONTAINER_CONFIG.fields.keys():
            raise BadRequest("config cannot be empty in order to create a container")
        warnings: list[str] = []
        c = await self.service.create(body, req.q("name"), warnings)
        return json_response({"Id": c.id, "Warnings": warnings}, 201)

    async def list(self, req: Request) -> Response:
        items = self.service.views.list(req.qbool("all"), req.qint("limit", -1), req.filters())
        if req.qbool("size"):
            return json_response(await self.service.views.sized_summaries(items))
        return json_response([self.service.views.summary(c) for c in items])

    async def inspect(self, req: Request) -> Response:
        c = self.service.get(req.params["id"])
        view = self.service.views.inspect(c)
        if req.qbool("size"):  # both fields, even a zero SizeRw, as dockerd's inspect
            sized = (await self.service.views.sized_summaries([c]))[0]
            view.update(SizeRw=sized.get("SizeRw", 0), SizeRootFs=sized["SizeRootFs"])
        return json_response(view)

    async def start(self, req: Request) -> Response:
        await self.service.start(req.params["id"])
        return no_content()

    def _timeout(self, req: Request) -> int | None:
        value = req.q("t")
        return None if value in (None, "") else req.qint("t", 10)

    async def stop(self, req: Request) -> Response:
        await self.service.stop(req.params["id"], self._timeout(req), req.q("signal"))
        return no_content()

    async def restart(self, req: Request) -> Response:
        await self.service.restart(req.params["id"], self._timeout(req))
        return no_content()

    async def kill(self, req: Request) -> Response:
        await self.service.kill(req.params["id"], req.q("signal"))
        return no_content()

    async def rename(self, req: Request) -> Response:
        self.service.admin.rename(req.params["id"], req.q("name") or "")
        return no_content()

    async def pause(self, req: Request) -> Response:
        await self.service.admin.pause(req.params["id"])
        return no_content()

    async def unpause(self, req: Request) -> Response:
        await self.service.admin.unpause(req.params["id"])
        return no_content()

    async def update(self, req: Request) -> Response:
        warnings = await self.service.admin.update(req.params["id"],
                                                   req.json_as(apitypes.UPDATE_CONFIG) or {})
        return json_response({"Warnings": warnings})

    async def resize(self, req: Request) -> Response:
        await self.service.resize(req.params["id"], req.qint("h", 0), req.qint("w", 0))
        return Response(200)

    async def remove(self, req: Request) -> Response:
        if req.qbool("link"):
            self.service.links.remove_link(req.params["id"])
        else:
            await self.service.remove(req.params["id"], force=req.qbool("force"),
                                      volumes=req.qbool("v"))
        return no_content()

    async def links(self, req: Request) -> Response:
        """tether extension: the links of one container (as parent), see docs/cli.md."""
        return json_response(self.service.links.links_view(self.service.get(req.params["id"])))

    async def all_links(self, req: Request) -> Response:
        return json_response([view for c in self.service.all()
                              for view in self.service.links.links_view(c)])

    async def wait(self, req: Request) -> StreamResponse:
        """Registered before the headers go out; the body comes when the condition is met."""
        result = self.service.waiter(req.params["id"], req.q("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            code = await result()
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"
        return StreamResponse(body(), "application/json")

    async def attach(self, req: Request) -> Hijack:
        keys = _detach_keys(req.q("detachKeys") or "")
        c = self.service.get(req.params["id"])
        if c.state.paused:  # dockerd's refusal, before the upgrade
            raise Conflict(f"container {req.params['id']} is paused, unpause the container "
                           "before attach")
        stdin = req.qbool("stdin")
        streams = frozenset(s for s, name in ((1, "stdout"), (2, "stderr")) if req.qbool(name))
        tty = c.tty
        # `logs`: the output so far first (from a driver that keeps none, dockerd's error on
        # stdout, and the attach ends); `stream`: then the live output; neither: just the head
        logs = req.qbool("logs")
        unreadable = logs and log_options.reads_nothing(c.host_config.log_config.type)
        path = self.service.paths.log(c.id)

        async def run(conn: HijackedConn) -> None:
            if unreadable:
                text = log_options.ATTACH_NO_LOG.encode()
                await conn.write(text if tty else frame(1, text))
                return
            # a container not running: attached before the replay and before the client has
            # read the head (the first write waits for that), so that a start meanwhile streams
            # to it, as to dockerd's; a running one after the replay, as dockerd does (else
            # what it writes during the replay would come twice)
            stream = req.qbool("stream")
            attaching = self._attaching(c.id) if stream and not c.state.running else None
            try:
                if logs and streams:
                    async for kind, data in log_entries(path, LogQuery(streams=streams),
                                                        lambda: False):
                        await conn.write(data if tty else frame(kind, data))
                if stream:
                    attaching = attaching or self._attaching(c.id)
                    await live(conn, attaching)
            finally:
                if attaching is not None:
                    _give_up(attaching)

        async def live(conn: HijackedConn, attaching: asyncio.Future) -> None:
            try:
                stdio = await attaching
            except NotFound:  # removed before its next start: dockerd keeps waiting for it
                await _until_client_leaves(conn)
                return
            if stdio is None:
                return
            outcome = await pump(conn, stdio, tty=tty, stdin=stdin, streams=streams,
                                 detach_keys=keys)
            if outcome is Outcome.DETACHED:
                self.service.emit(c, "detach")
        content_type = attach_content_type(tty, api_version(req.api_version), req.wants_upgrade)
        return Hijack(run, content_type, standard_headers=False)

    def _attaching(self, cid: str) -> asyncio.Future:
        return asyncio.ensure_future(self.service.attach(cid))

    async def logs(self, req: Request) -> StreamResponse:
        c = self.service.get(req.params["id"])
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        if not (stdout or stderr):
            raise BadRequest("Bad parameters: you must choose at least one stream")
        if log_options.reads_nothing(c.host_config.log_config.type):
            raise ApiError(log_options.NOT_READABLE, 501)
        tail = req.q("tail") or "all"
        query = LogQuery(
            streams=frozenset(s for s, on in ((1, stdout), (2, stderr)) if on),
            follow=req.qbool("follow"), timestamps=req.qbool("timestamps"),
            since=_unix_time(req.q("since")), until=_unix_time(req.q("until")),
            tail=-1 if tail == "all" else _tail(tail))
        tty = c.tty
        path = self.service.paths.log(c.id)

        async def body() -> AsyncIterator[bytes]:
            async for stream, data in log_entries(path, query, lambda: c.state.running):
                yield data if tty else frame(stream, data)
        return StreamResponse(body(), logs_content_type(tty, api_version(req.api_version)))


def _give_up(attaching: asyncio.Future) -> None:
    """Stop waiting for the container's stdio, closing it if it was handed over."""
    if not attaching.done():
        attaching.cancel()
    elif not attaching.cancelled() and attaching.exception() is None and attaching.result():
        attaching.result().close()


async def _until_client_leaves(conn: HijackedConn) -> None:
    """Hold the connection open, discarding stdin, until the client closes its side. dockerd
    holds it even past a half-close, until the client closes the socket; a half-closed
    client that keeps reading is the one case where tether ends sooner."""
    while await conn.read():
        pass


def _detach_keys(value: str) -> bytes:
    try:
        return detachkeys.parse(value)
    except ValueError:
        raise BadRequest(f"Invalid detach keys ({value}) provided") from None


def _unix_time(value: str | None) -> float | None:
    if value in (None, "", "0"):
        return None
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"invalid time value: {value}") from None


def _tail(value: str) -> int:
    try:
        return max(int(value), 0)
    except ValueError:
        return -1
