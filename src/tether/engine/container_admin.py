"""The administrative verbs on a container that neither start nor stop it: rename, update (the
limits and restart policy), pause and unpause (runc's freezer), each with dockerd's refusals
and event."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Awaitable, Callable

from tether.engine import limits
from tether.engine.link_service import LinkService
from tether.engine.records import Container
from tether.engine.registry import ContainerRegistry
from tether.rules import config as rules
from tether.rules import health
from tether.rules import names as naming
from tether.rules.errors import ApiError, BadRequest, Conflict
from tether.runtime import cgroups
from tether.runtime.conmon import Runtime
from tether.spec.types import RestartPolicy


class ContainerAdmin:
    """rename, update, pause, unpause; all but rename under the container's lifecycle lock."""

    def __init__(self, registry: ContainerRegistry, links: LinkService, runtime: Runtime,
                 lifecycle_lock: Callable[[str], asyncio.Lock],
                 emit: Callable[..., None]) -> None:
        self.registry = registry
        self.links = links
        self.runtime = runtime
        self.lifecycle_lock = lifecycle_lock
        self.emit = emit

    def rename(self, ref: str, new_name: str) -> None:
        c = self.registry.get(ref)
        if not new_name:
            raise BadRequest("Neither old nor new names may be empty")
        if not naming.valid_name(new_name):
            raise BadRequest(naming.invalid_name_message(new_name.lstrip("/")))
        full = "/" + new_name.lstrip("/")
        if full == c.name:
            raise BadRequest("Renaming a container with the same name as its current name")
        full = self.registry.reserve_name(new_name, c.id)
        self.registry.save_or_fail(c, {**c.to_json(), "name": full})
        self.registry.unbind_name(c.name)
        self.registry.bind_name(full, c.id)
        self.links.rename_parent(c, full)
        old, c.name = c.name, full
        self.emit(c, "rename", oldName=old)

    async def pause(self, ref: str) -> None:
        """Freeze the container's processes (runc pause), with dockerd's refusals."""
        c = self.registry.get(ref)
        async with self.lifecycle_lock(c.id):
            if c.state.status != "running":
                raise Conflict(f"Container {c.id} is not running")
            if c.state.paused:
                raise Conflict(f"Container {c.id} is already paused")
            await self._runc_call(c, self.runtime.pause, "pause")
            c.state.paused = True
            c.state.health = health.at_stop(c.state.health)  # probing stops, as dockerd's
            self.registry.save(c)
        self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.registry.get(ref)
        async with self.lifecycle_lock(c.id):
            if not c.state.paused:
                raise Conflict(f"Container {c.id} is not paused")
            await self._runc_call(c, self.runtime.resume, "unpause")
            c.state.paused = False
            self.registry.save(c)
        self.emit(c, "unpause")

    async def _runc_call(self, c: Container, call: Callable[[str], Awaitable[None]],
                         verb: str) -> None:
        try:
            await call(c.id)
        except RuntimeError as exc:
            raise ApiError(f"Cannot {verb} container {c.id}: {exc}", 500) from None

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """`POST /containers/{id}/update`: the limits (tether.engine.limits) and the restart
        policy, checked as dockerd checks them, written to a running container's cgroup, then
        saved in the record; returns dockerd's Warnings."""
        c = self.registry.get(ref)
        if not isinstance(body, dict):
            raise BadRequest("update configuration must be a JSON object")
        async with self.lifecycle_lock(c.id):
            resources, warnings = limits.updated(c.id, c.host_config.resources, body)
            policy = c.host_config.restart_policy
            if "RestartPolicy" in body:
                if (c.host_config.auto_remove
                        and rules.RestartPolicy.from_api(body["RestartPolicy"]).name != "no"):
                    raise BadRequest(f"Cannot update container {c.id}: Restart policy cannot be "
                                     "updated because AutoRemove is enabled for the container")
                policy = RestartPolicy.from_api(body["RestartPolicy"])
            if c.state.status == "running":
                try:
                    await asyncio.to_thread(
                        limits.write_live, self.runtime.cgroup_paths(c.id), resources,
                        body.get("PidsLimit") is not None and body["PidsLimit"] <= 0)
                except cgroups.UpdateError as exc:
                    raise ApiError(f"Cannot update container {c.id}: {exc}") from None
            host_config = replace(c.host_config, resources=resources, restart_policy=policy)
            self.registry.save_or_fail(c, {**c.to_json(), "host_config": host_config.to_api(
                omit=False)})
            c.host_config = host_config
        self.emit(c, "update")
        return warnings
