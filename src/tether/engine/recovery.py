"""Daemon start-up: the containers' records reloaded and reconciled with what runc and conmon
report, whatever state the last daemon left them in.

A container that still runs keeps running and gets a watcher again; one that exited while the
daemon was away gets its exit recorded (from conmon's exit file) and its run freed. Nothing
about one container stops the daemon: a directory without a record is a half-made container
and is removed with its files; a record that cannot be read is set aside (`_set_aside`); a
container that cannot be taken back or restarted is left stopped with the reason in State.Error
(`_restore_failed`).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

from tether.rules import config as rules
from tether.rules import health
from tether.engine.containers import ContainerService
from tether.engine.records import Container, State
from tether.rules.times import now_rfc3339
from tether.runtime import mounts
from tether.state import remove_stale_temp_files

log = logging.getLogger("tether.containers")


class Recovery:
    """Takes one daemon's containers back at start-up (`load`)."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service
        self.registry = service.registry
        self.paths = service.paths
        self.runtime = service.runtime

    async def load(self) -> None:
        """Reload records (in creation order), links, then each container in dependency order
        (linked ones before those that link to them)."""
        self.paths.containers.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.paths.containers.iterdir()):
            remove_stale_temp_files(entry)
            try:
                c = self.registry.read_record(entry.name)
                if c.id != entry.name:
                    raise ValueError(f"the record names container {c.id!r}")
            except FileNotFoundError:
                log.warning("removing half-made container", extra={"ctx": {"dir": entry.name}})
                await self.service.resources.release(entry.name)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            except Exception as exc:  # anything a damaged file can make the parser raise
                await self._set_aside(entry, exc)
                continue
            self.registry.add(c)
        self.registry.drop_stale_pending()
        ordered = sorted(self.registry.all(), key=lambda c: c.created)
        for c in ordered:
            self.service.links.reload(c)
        for c in self.service.links.dependency_order(ordered):
            try:
                await self._reconcile(c)
            except Exception as exc:
                await self._restore_failed(c, exc)
        self.service.volumes.unmount_unused()
        await self.service.links.update_accepts()

    async def _set_aside(self, entry: Path, exc: Exception) -> None:
        """A record that cannot be read: the container cannot be managed without it, so what
        still runs of it is stopped and freed, and its directory (record, log, files) is moved
        whole to `<data-root>/corrupt/containers/` for a person to look at, never deleted."""
        await self.service.resources.release(entry.name)
        target = self.paths.corrupt_containers / entry.name
        if target.exists():
            target = target.with_name(f"{entry.name}.{time.time_ns()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(entry, target)
        except OSError as err:
            log.error("unreadable container record left in place", extra={"ctx": {
                "dir": str(entry), "error": str(exc), "move_error": str(err)}})
            return
        log.error("unreadable container record set aside", extra={"ctx": {
            "id": entry.name, "error": str(exc), "moved_to": str(target)}})

    async def _restore_failed(self, c: Container, exc: Exception) -> None:
        """A container that could not be taken back as it was (a published port taken while
        the daemon was down) or restarted (an image layer or a volume gone): its process, if it
        still runs, is killed and what it held freed, and it stays stopped with the reason in
        State.Error, as dockerd leaves a container whose start at boot failed. Not retried."""
        message = self.service.error_text(exc)
        log.error("container could not be restored", extra={"ctx": {"id": c.id,
                                                                    "error": message}})
        try:
            if self.service.is_watched(c.id):  # started, then failed
                await self.service.signal(c, signal.SIGKILL)
                await self.service.wait_released(c.id)
            elif self.runtime.status(c.id) in ("created", "running", "paused"):
                await self.runtime.kill(c.id, signal.SIGKILL)
                if self.runtime.status(c.id) == "paused":
                    await self.runtime.resume(c.id)
                code = await self.runtime.wait(c.id)
                self.service.emit(c, "die", exitCode=str(code))
                await self.service.resources.release(c)
                c.state = State(status="exited", exit_code=code, started_at=c.state.started_at,
                                finished_at=now_rfc3339(), health=health.at_stop(c.state.health))
        except Exception:
            log.exception("stopping an unrestorable container failed", extra={"ctx": {
                "id": c.id}})
        c.state.error = message
        self.registry.save(c)

    async def _reconcile(self, c: Container) -> None:
        status = self.runtime.status(c.id)
        if c.state.status in ("running", "restarting") and status in ("running", "paused"):
            # runc's word on the freezer wins: a pause or unpause may have been cut short
            paused = status == "paused"
            if (c.state.status, c.state.paused) != ("running", paused):
                c.state.status, c.state.paused = "running", paused
                self.registry.save(c)
            await self.service.attachment.restore(c)
            self.service.container_mounts.reacquire(c)
            await self.service.attachment.serve_dns(c)
            self.service.watch(c)
            return
        if c.state.status == "running":
            code = self.runtime.exit_code(c.id)
            await self.service.handle_exit(c, 255 if code is None else code)
            return
        if c.state.status == "removing":
            await self.service.remove(c.id, force=True)
            return
        if status is not None or mounts.is_mounted(self.paths.rootfs(c.id)) \
                or self.paths.netns(c.id).exists():
            await self.service.resources.release(c)
        if c.state.status == "restarting":
            c.state.status = "exited"
            self.registry.save(c)
        policy = rules.RestartPolicy.from_api(c.host_config.restart_policy.to_api())
        if c.has_been_started and (policy.name == "always" or
                                   (policy.name == "unless-stopped" and not c.stopped_by_user)):
            await self.service.start_at_boot(c)
