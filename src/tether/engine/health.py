"""Health checks: each running container with a probe gets one task on the daemon's loop that
sleeps its interval, runs the probe as an exec in the container and records the result in
`State.Health` (rules in tether.rules.health).

Why a task per container and nothing else: a probe costs the exec's own `runc exec` process and
no thread of ours; the loop only waits on its pipes. Probing follows the container's events
(`start`/`unpause` begin it, `die`/`pause`/`destroy` end it), so the lifecycle code only resets
the status (`health.at_start`/`at_stop`), and `resume()` takes probing back after a daemon
restart with the status as it was saved (Docker 23's fix of moby#41871: 20.10 never probes a
live-restored container again). A status change is saved with the record at once; the log and
streak in between are saved with the record's next write, as later dockerd keeps them in memory.
"""
from __future__ import annotations

import asyncio

from tether.engine.containers import ContainerService
from tether.engine.execs import Exec, ExecService
from tether.engine.records import Container
from tether.rules import health
from tether.rules.errors import ApiError, NotFound
from tether.rules.times import go_duration, now_rfc3339, parse_rfc3339
from tether.runtime.execs import ExecProcess

_STARTS = ("start", "unpause")
_STOPS = ("die", "pause", "destroy")


class HealthService:
    """The probing of every container with a health check."""

    def __init__(self, containers: ContainerService, execs: ExecService) -> None:
        self.containers = containers
        self.execs = execs
        self._monitors: dict[str, asyncio.Task] = {}

    async def follow(self) -> None:
        """Start and stop probing as containers start and stop; runs until cancelled."""
        queue = self.containers.events.subscribe()
        try:
            while True:
                message = await queue.get()
                if message["Type"] != "container":
                    continue
                if message["Action"] in _STARTS:
                    self._begin(message["Actor"]["ID"])
                elif message["Action"] in _STOPS:
                    self._end(message["Actor"]["ID"])
        finally:
            self.containers.events.unsubscribe(queue)
            for cid in list(self._monitors):
                self._end(cid)

    def resume(self) -> None:
        """After a daemon restart: probe again every running container that has a probe."""
        for c in self.containers.all():
            self._begin(c.id)

    def _begin(self, cid: str) -> None:
        self._end(cid)
        try:
            c = self.containers.get(cid)
        except NotFound:
            return
        probe = health.settings(c.config.to_api())
        if probe is None or c.state.status != "running" or c.state.paused:
            return
        if c.state.health is None:   # a record written before the container had a probe
            c.state.health = health.Health()
        self._monitors[cid] = asyncio.create_task(self._monitor(cid, probe))

    def _end(self, cid: str) -> None:
        task = self._monitors.pop(cid, None)
        if task is not None:
            task.cancel()

    async def _monitor(self, cid: str, probe: health.Settings) -> None:
        while True:
            await asyncio.sleep(probe.interval / 1e9)
            c = self.containers.get(cid)
            start = now_rfc3339()
            code, output = await self._probe(c, probe)
            state = c.state
            if state.health is None or state.status != "running" or state.paused:
                return
            result = {"Start": start, "End": now_rfc3339(), "ExitCode": code, "Output": output}
            since_start = parse_rfc3339(start) - parse_rfc3339(state.started_at)
            if health.record(state.health, result, probe, int(since_start * 1e9)):
                self.containers.registry.save(c)
                self.containers.emit(c, "health_status: " + state.health.status)

    async def _probe(self, c: Container, probe: health.Settings) -> tuple[int, str]:
        """Run the probe once: its exit code and output, -1 and dockerd's text when it could
        not run or outlived its timeout (then it is killed)."""
        try:
            e = self.execs.create(c.id, {"Cmd": probe.command, "AttachStdout": True,
                                         "AttachStderr": True, "User": c.config.user,
                                         "WorkingDir": c.config.working_dir})
        except ApiError as exc:
            return -1, exc.message
        try:
            process = await self.execs.launch(e)
        except Exception as exc:   # the runtime's refusal (the container just stopped...)
            self.execs.discard(e)
            return -1, self.containers.error_text(exc)
        await process.close_stdin()
        collected = asyncio.ensure_future(_collect(process))
        try:
            code, output = await asyncio.wait_for(asyncio.shield(collected), probe.timeout / 1e9)
        except TimeoutError:
            process.kill()
            code, output = -1, health.timeout_output(go_duration(probe.timeout))
            collected.add_done_callback(lambda done: self._finish(e, done))
            return code, output
        except asyncio.CancelledError:   # probing stopped: the probe goes too
            process.kill()
            collected.add_done_callback(lambda done: self._finish(e, done))
            raise
        self._finish(e, collected)
        return code, output

    def _finish(self, e: Exec, collected: asyncio.Future) -> None:
        """The exec's end (`exec_die`), then it is forgotten: probes are not kept as execs."""
        if not collected.cancelled() and collected.exception() is None:
            self.execs.finish(e, collected.result()[0])
        self.execs.discard(e)


async def _collect(process: ExecProcess) -> tuple[int, str]:
    """Read the probe's stdout and stderr (kept to dockerd's limit) until it exits."""
    kept = bytearray()
    while (chunk := await process.read()) is not None:
        if len(kept) <= health.MAX_OUTPUT:
            kept += chunk[1][:health.MAX_OUTPUT + 1 - len(kept)]
    return await process.wait(), health.output_text(bytes(kept))
