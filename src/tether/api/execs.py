"""Exec routes: create, start (hijacked), inspect, resize."""
from __future__ import annotations

import asyncio

from tether.rules import apitypes
from tether.api.http import Hijack, HijackedConn, Request, Response, Router, json_response
from tether.api.pump import Outcome, pump
from tether.api.streams import MULTIPLEXED, RAW
from tether.engine.execs import Exec, ExecService, console_size
from tether.runtime.conmon import ExecProcess


class ExecRoutes:
    def __init__(self, service: ExecService) -> None:
        self.service = service

    def register(self, router: Router) -> None:
        router.add("POST", "/containers/{id:path}/exec", self.create)
        router.add("POST", "/exec/{id}/start", self.start)
        router.add("GET", "/exec/{id}/json", self.inspect)
        router.add("POST", "/exec/{id}/resize", self.resize)

    async def create(self, req: Request) -> Response:
        body = req.json_as(apitypes.EXEC_CONFIG, required=True) or {}
        e = self.service.create(req.params["id"], body)
        return json_response({"Id": e.id}, 201)

    async def inspect(self, req: Request) -> Response:
        return json_response(self.service.get(req.params["id"]).inspect())

    async def resize(self, req: Request) -> Response:
        await self.service.resize(req.params["id"], req.qint("h", 0), req.qint("w", 0))
        return Response(200)

    async def start(self, req: Request) -> Response | Hijack:
        """Framing follows `Tty` of this request's body (absent: multiplexed, as Go's false), the
        process's terminal the exec's create body, as in dockerd; it starts after the 101."""
        body = req.json_as(apitypes.EXEC_START_CHECK) or {}
        e = self.service.get(req.params["id"])
        tty = bool(body.get("Tty"))
        size = console_size(body.get("ConsoleSize"))
        self.service.check_startable(e)
        if body.get("Detach"):
            process = await self.service.launch(e, size)
            _finish_later(self.service, e, process)
            return Response(200)

        async def run(conn: HijackedConn) -> None:
            process = await self.service.launch(e, size)
            outcome = Outcome.GONE
            try:
                # a raw stream has no room for stderr: dockerd drops it there
                outcome = await pump(conn, process, tty=tty, stdin=e.attach_stdin,
                                     streams=frozenset({1} if tty else {1, 2}),
                                     detach_keys=e.detach_keys)
            finally:
                if outcome is Outcome.ENDED:
                    self.service.finish(e, await process.wait())
                else:  # detached or gone: the process runs on, its output drained
                    _finish_later(self.service, e, process)
            if outcome is Outcome.DETACHED:
                self.service.detached(e)
        return Hijack(run, RAW if tty else MULTIPLEXED)


_background: set[asyncio.Task] = set()


def _finish_later(service: ExecService, e: Exec, process: ExecProcess) -> None:
    """A detached exec: drain its output and record its exit code when it ends."""

    async def drain() -> None:
        while await process.read() is not None:
            pass
        service.finish(e, await process.wait())
    task = asyncio.get_running_loop().create_task(drain())
    _background.add(task)
    task.add_done_callback(_background.discard)
