"""The containers' lifecycle: create, start, stop, kill, wait, remove, attach.

`ContainerService` composes the image store, the runtime driver and the engine's other services,
each one concern: the registry (lookup and records), the generated files (hosts, hostname,
resolv.conf), the links, the network attachment, creation, the mounts, what a run holds on
the host (run_resources.py: made at start, freed at its end), the views and the administrative
verbs (rename, update, pause: container_admin.py); recovery at start-up is
tether.engine.recovery. Each lifecycle change of a container runs under that
container's lock, and every exit, whoever caused it, goes through one path (`handle_exit`) that
records the code, frees what the run held and applies the restart policy, so that a container
is in one consistent state whichever way it stopped, including while the daemon was down.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from tether.engine import logrotation, securityopt
from tether.engine.container_admin import ContainerAdmin
from tether.engine.container_mounts import ContainerMounts
from tether.engine.container_views import ContainerViews
from tether.engine.creation import ContainerCreation
from tether.engine.events import EventBus
from tether.engine.generated_files import GeneratedFiles
from tether.engine.link_service import LinkService
from tether.engine.netattach import NetworkAttachment
from tether.engine.paths import Paths
from tether.engine.records import Container, State
from tether.engine.registry import ContainerRegistry
from tether.engine.run_resources import RunResources
from tether.engine.volumes import VolumeService
from tether.image.store import ImageStore
from tether.network.manager import NetworkManager
from tether.rules import config as rules
from tether.rules import health
from tether.rules.errors import (INTERNAL_ERROR, ApiError, BadRequest, Conflict, NotFound,
                                 NotModified, os_error_text, start_failure_code)
from tether.rules.times import now_rfc3339, parse_rfc3339
from tether.runtime import cgroups
from tether.runtime.conmon import Attachment, Runtime

log = logging.getLogger("tether.containers")

RESTART_BACKOFF_START = 0.1
RESTART_BACKOFF_MAX = 60.0
RESTART_BACKOFF_RESET_AFTER = 10.0


@dataclass
class _Run:
    """What the daemon tracks for one container beyond its record."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    exited: asyncio.Event | None = None          # set when the current run has been cleaned up
    watcher: asyncio.Task | None = None
    restarter: asyncio.Task | None = None
    pending_attach: list[asyncio.Future] = field(default_factory=list)
    exit_waiters: list[asyncio.Future] = field(default_factory=list)
    removal_waiters: list[asyncio.Future] = field(default_factory=list)
    backoff: float = RESTART_BACKOFF_START


class ContainerService:
    """All containers of one daemon: the lifecycle, and the services it composes."""

    def __init__(self, paths: Paths, images: ImageStore, runtime: Runtime, network: NetworkManager,
                 volumes: VolumeService, host_resolv: Path = Path("/etc/resolv.conf"),
                 host_hosts: Path = Path("/etc/hosts"), events: EventBus | None = None) -> None:
        self.paths = paths
        self.images = images
        self.runtime = runtime
        self.network = network
        self.volumes = volumes
        self._runs: dict[str, _Run] = {}
        self._tasks: set[asyncio.Task] = set()
        self.events = events or EventBus()
        self.registry = ContainerRegistry(paths)
        self.files = GeneratedFiles(paths, host_resolv, host_hosts)
        self.links = LinkService(self.registry, self.files, network)
        self.attachment = NetworkAttachment(self.registry, network, paths, self.files,
                                            self.links, self.events, self.lifecycle_lock)
        self.views = ContainerViews(self.registry, self.links, self.attachment, images, paths)
        self.container_mounts = ContainerMounts(paths, images, volumes, self.events)
        self.resources = RunResources(paths, images, runtime, self.registry, self.links,
                                      self.attachment, self.container_mounts)
        self.creation = ContainerCreation(self.registry, images, paths, self.files, self.links,
                                          self.attachment, self.container_mounts,
                                          self.resources.lower_dirs, self.emit)
        self.admin = ContainerAdmin(self.registry, self.links, runtime, self.lifecycle_lock,
                                    self.emit)
        self.security = securityopt.DaemonSecurity()  # the daemon's flags, set by the daemon

    def get(self, ref: str) -> Container:
        """Find a container by full ID, name (with or without `/`) or unique ID prefix."""
        return self.registry.get(ref)

    def all(self) -> list[Container]:
        return self.registry.all()

    def error_text(self, exc: BaseException) -> str:
        """What a client (and State.Error) is told of a failure: an API error's or the runtime's
        text, a file error in Go's shape, each with the daemon's paths hidden; for anything else
        (a bug) a fixed text, the traceback going to the log."""
        if isinstance(exc, ApiError):
            return self.paths.hide(exc.message)
        if isinstance(exc, OSError):
            return self.paths.hide(os_error_text(exc, self.paths.data_root))
        if isinstance(exc, RuntimeError) and not isinstance(exc, RecursionError):
            return self.paths.hide(str(exc))
        log.error("operation failed", exc_info=exc)
        return INTERNAL_ERROR

    def emit(self, c: Container, action: str, **extra: str) -> None:
        """A container event with dockerd's attributes: the labels, image, name, then extras."""
        attributes = {**(c.config.labels or {}), "image": c.config.image,
                      "name": c.name.lstrip("/"), **extra}
        self.events.publish("container", action, c.id, attributes)

    def _run(self, cid: str) -> _Run:
        return self._runs.setdefault(cid, _Run())

    def lifecycle_lock(self, cid: str) -> asyncio.Lock:
        """The lock every start, stop and removal of a container holds: a caller that needs the
        container to stay as it is (e.g. copying out of a stopped one) takes it too."""
        return self._run(cid).lock

    def is_watched(self, cid: str) -> bool:
        """Whether a watcher follows the container's process (it was started by this daemon
        or taken back)."""
        watcher = self._run(cid).watcher
        return watcher is not None and not watcher.done()

    async def start_at_boot(self, c: Container) -> None:
        """Start a container whose restart policy asks for it at daemon start."""
        run = self._run(c.id)
        async with run.lock:
            await self._start_locked(c, run)

    async def wait_released(self, cid: str) -> None:
        """Until the exit being handled now has freed the run (unmounted its root): a container
        reads as exited from the first step of that, and its waiters may already be answered."""
        exited = self._run(cid).exited
        if exited is not None:
            await exited.wait()

    def users_of_image(self, image_id: str) -> list[tuple[str, bool]]:
        """(container ID, running) of every container made from an image, for `rmi`."""
        return [(c.id, c.state.running) for c in self.registry.all() if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        """IDs of every container whose mount plan uses volume `name` (VolumeService.referrers),
        those still being created included."""
        return self.creation.volume_users(name)

    async def create(self, body: dict[str, Any], name: str | None,
                     warnings: list[str] | None = None) -> Container:
        """`POST /containers/create` (tether.engine.creation); dockerd's Warnings are added to
        `warnings`."""
        return await self.creation.create(body, name, warnings)

    # ---- start --------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        """`POST /containers/{id}/start`: 304 when it already runs."""
        c = self.get(ref)
        run = self._run(c.id)
        async with run.lock:
            if c.state.status == "running":
                raise NotModified()
            if c.state.status in ("removing", "dead"):
                raise Conflict(f"cannot start a container in state {c.state.status}")
            c.stopped_by_user = False
            await self._start_locked(c, run)

    async def _start_locked(self, c: Container, run: _Run) -> None:
        self.views.forget_ports_of_failed_start(c.id)
        try:
            await self.resources.set_up(c, self.security, self.creation.process_defaults)
            await self._hand_over_attaches(c, run)
            pid = await self.runtime.start(c.id)
        except Exception as exc:
            self.views.keep_ports_of_failed_start(c)
            await self.resources.release(c)
            message = self.error_text(exc)
            # as dockerd: an earlier exit's code stays, else 128; the runtime's "not found" or
            # "permission denied" for the command is 127/126 (not a missing file of ours)
            code = c.state.exit_code or 128
            if isinstance(exc, RuntimeError) or isinstance(exc.__cause__, RuntimeError):
                code = start_failure_code(message, code)
            c.state = State(status="created" if not c.has_been_started else "exited",
                            exit_code=code, error=message, finished_at=c.state.finished_at,
                            started_at=c.state.started_at, health=c.state.health)
            self.registry.save(c)
            self._fail_attaches(run)
            if c.host_config.auto_remove:  # as dockerd: `run --rm` waits for the removal
                self._background(self._auto_remove(c))
            if isinstance(exc, ApiError):
                raise
            status = 500 if isinstance(exc, OSError) or message == INTERNAL_ERROR else 400
            raise ApiError(message, status) from exc
        c.state = State(status="running", pid=pid, started_at=now_rfc3339(),
                        health=health.at_start(c.config.to_api(), c.state.health))
        c.has_been_started = True
        self.registry.save(c)
        self.watch(c)
        await self.links.update_accepts()
        log.info("container started", extra={"ctx": {"id": c.id, "pid": pid}})
        self.emit(c, "start")

    async def _hand_over_attaches(self, c: Container, run: _Run) -> None:
        """Clients that attached before start get the container's stdio before its first byte."""
        pending, run.pending_attach = run.pending_attach, []
        for fut in pending:
            if not fut.done():
                fut.set_result(await self.runtime.attach(c.id))

    def _fail_attaches(self, run: _Run, gone: NotFound | None = None) -> None:
        """End the wait of clients that attached before a start: a start that failed leaves
        nothing to stream (None); a removal (`gone`) leaves no start to wait for."""
        pending, run.pending_attach = run.pending_attach, []
        for fut in pending:
            if fut.done():
                continue
            if gone is None:
                fut.set_result(None)
            else:
                fut.set_exception(gone)

    # ---- exits, restart policies --------------------------------------------------------

    def watch(self, c: Container) -> None:
        """Follow a running container's process until it exits (`handle_exit`)."""
        run = self._run(c.id)
        run.exited = asyncio.Event()
        run.watcher = asyncio.create_task(self._wait_exit(c))
        rotation = logrotation.for_run(c, self.paths.log(c.id),
                                       lambda: self.runtime.reopen_log(c.id), run.exited)
        if rotation is not None:
            self._background(rotation)

    async def _wait_exit(self, c: Container) -> None:
        try:
            code = await self.runtime.wait(c.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("waiting for container failed", extra={"ctx": {"id": c.id}})
            code = 255
        await self.handle_exit(c, code)

    async def handle_exit(self, c: Container, code: int) -> None:
        """Every exit, whoever caused it: the record, the run freed, the waiters told, then
        AutoRemove or the restart policy."""
        run = self._run(c.id)
        started = c.state.started_at
        # read before `runc delete` removes the cgroup that counts the kills
        oom_killed = cgroups.oom_kills(self.runtime.cgroup_paths(c.id)) > 0
        c.state = State(status="exited", exit_code=code, started_at=started,
                        finished_at=now_rfc3339(), oom_killed=oom_killed,
                        health=health.at_stop(c.state.health))
        if oom_killed:
            self.emit(c, "oom")  # before `die`, as dockerd
        self.emit(c, "die", exitCode=str(code))  # before the network's `disconnect`, as dockerd
        try:  # whatever fails here, the waiters (stop, rm -f) must hear of the exit
            await self.resources.release(c)
            c.link_ips, c.started_link_env = {}, []
            self.registry.save(c)
            await self.links.update_accepts()
        except Exception:
            log.exception("clean-up after an exit failed", extra={"ctx": {"id": c.id}})
        log.info("container exited", extra={"ctx": {"id": c.id, "code": code}})
        waiters, run.exit_waiters = run.exit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(code)
        if run.exited:
            run.exited.set()
        if c.host_config.auto_remove:
            self._background(self._auto_remove(c))
            return
        policy = rules.RestartPolicy.from_api(c.host_config.restart_policy.to_api())
        if policy.should_restart(code, c.restart_count, c.stopped_by_user):
            run.restarter = asyncio.create_task(self._restart_later(c, run, started))

    def _background(self, coro: Awaitable[None]) -> None:
        """Run a task the daemon keeps a reference to until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _auto_remove(self, c: Container) -> None:
        try:  # as dockerd, `--rm` takes the anonymous volumes with it
            await self.remove(c.id, force=True, volumes=True)
        except NotFound:
            pass

    async def _restart_later(self, c: Container, run: _Run, started_at: str) -> None:
        """Restart after Docker's back-off: 100 ms doubling, reset after 10 s of running."""
        ran_for = time.time() - parse_rfc3339(started_at)
        run.backoff = RESTART_BACKOFF_START if ran_for >= RESTART_BACKOFF_RESET_AFTER \
            else min(run.backoff * 2, RESTART_BACKOFF_MAX)
        c.state.status = "restarting"
        self.registry.save(c)
        await asyncio.sleep(run.backoff)
        async with run.lock:
            if self.registry.find(c.id) is None or c.state.status != "restarting" or c.stopped_by_user:
                return
            c.restart_count += 1
            try:
                await self._start_locked(c, run)
            except Exception:
                log.exception("restart failed", extra={"ctx": {"id": c.id}})
                c.state.status = "exited"
                self.registry.save(c)

    # ---- stop, kill, restart ------------------------------------------------------------

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        """SIGTERM (or the StopSignal), then SIGKILL after `timeout` seconds (default: the
        container's StopTimeout, else 10, as dockerd)."""
        c = self.get(ref)
        run = self._run(c.id)
        async with run.lock:
            await self._stop_locked(c, run, timeout, sig)

    async def _stop_locked(self, c: Container, run: _Run, timeout: int | None,
                           sig: str | None) -> None:
        if c.state.status == "restarting":
            c.stopped_by_user = True
            if run.restarter:
                run.restarter.cancel()
            c.state.status = "exited"
            self.registry.save(c)
            return
        if c.state.status != "running":
            raise NotModified()
        c.stopped_by_user = True
        self.registry.save(c)
        stop_signal = rules.parse_signal(sig or c.config.stop_signal, signal.SIGTERM)
        if timeout is None:
            timeout = 10 if c.config.stop_timeout is None else c.config.stop_timeout
        exited = run.exited
        await self.signal(c, stop_signal)
        try:
            await asyncio.wait_for(exited.wait(), None if timeout < 0 else timeout)
        except asyncio.TimeoutError:
            await self.signal(c, signal.SIGKILL)
            await exited.wait()
        self.emit(c, "stop")

    async def signal(self, c: Container, number: int) -> None:
        """Signal the container's process (a `kill` event); a paused one is thawed to take it."""
        self.emit(c, "kill", signal=str(int(number)))
        await self.runtime.kill(c.id, number)
        if c.state.paused:
            await self.runtime.resume(c.id)
            c.state.paused = False
            self.registry.save(c)

    async def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        number = rules.parse_signal(sig, signal.SIGKILL)
        if c.state.status != "running":
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        c.stopped_by_user = True  # as dockerd: a killed container is not restarted by its policy
        self.registry.save(c)
        await self.signal(c, number)
        if number == signal.SIGKILL and self._run(c.id).exited:
            await self._run(c.id).exited.wait()

    async def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        run = self._run(c.id)
        async with run.lock:
            try:
                await self._stop_locked(c, run, timeout, None)
            except NotModified:
                pass
            c.stopped_by_user = False
            try:
                await self._start_locked(c, run)
            except ApiError as exc:  # dockerd's wording, and its status (a plain error: 500)
                raise ApiError(f"Cannot restart container {ref}: {exc.message}", 500) from None
            self.emit(c, "restart")

    # ---- wait ---------------------------------------------------------------------------

    def waiter(self, ref: str, condition: str) -> Callable[[], Awaitable[int]]:
        """Register a wait now (before the client is told the wait began); await the result later."""
        c = self.get(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise BadRequest(f"invalid condition: {condition!r}")
        run = self._run(c.id)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        if condition == "removed":
            run.removal_waiters.append(fut)
        elif condition == "next-exit" or c.state.status in ("running", "restarting"):
            run.exit_waiters.append(fut)
        else:
            fut.set_result(c.state.exit_code)

        async def result() -> int:
            return await fut
        return result

    # ---- remove, rename -----------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        """`DELETE /containers/{id}`; `volumes` (`rm -v`) also removes its anonymous volumes."""
        c = self.get(ref)
        run = self._run(c.id)
        if c.state.running and not force:
            raise Conflict(f'You cannot remove a running container {c.id}. Stop the container '
                           "before attempting removal or force remove")
        async with run.lock:
            if self.registry.find(c.id) is None:
                return
            if c.state.status == "restarting" and run.restarter:
                run.restarter.cancel()
            if c.state.status == "running":
                c.stopped_by_user = True
                await self.signal(c, signal.SIGKILL)
                await run.exited.wait()
            c.state.status = "removing"
            await self.resources.release(c)
            self.registry.discard(c)
            self.views.forget_ports_of_failed_start(c.id)
            self.links.drop_links_of(c)
            shutil.rmtree(self.paths.container(c.id), ignore_errors=True)
            if volumes:
                self.container_mounts.remove_anonymous(c.mount_points)
        self._runs.pop(c.id, None)
        for fut in run.removal_waiters:
            if not fut.done():
                fut.set_result(c.state.exit_code)
        self._fail_attaches(run, NotFound(f"No such container: {c.id}"))
        log.info("container removed", extra={"ctx": {"id": c.id}})
        self.emit(c, "destroy")

    # ---- attach, resize -----------------------------------------------------------------

    async def attach(self, ref: str) -> Attachment | None:
        """The container's stdio; before start, wait until start hands it over (dockerd waits
        for the next start of a created or exited container). None when that start fails;
        NotFound when the container is removed meanwhile."""
        c = self.get(ref)
        self.emit(c, "attach")
        if c.state.status == "running":
            return await self.runtime.attach(c.id)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._run(c.id).pending_attach.append(fut)
        return await fut

    async def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        await self.runtime.resize(c.id, height, width)

    async def shutdown(self) -> None:
        """Stop watching (containers keep running under conmon); used when the daemon exits.
        Records a full disk refused get a last try (else the next daemon reads the copies kept
        under the exec root)."""
        self.registry.close()
        for run in self._runs.values():
            for task in (run.watcher, run.restarter):
                if task:
                    task.cancel()
