"""A container's overlay filesystem, mounted for as long as a caller reads or writes it.

`docker cp` on a stopped container and `docker export` need the container's files (image layers
plus its own changes) whether it runs or not. The overlay is mounted at the container's rootfs
path under its lifecycle lock, so a `start` waits instead of racing the unmount, and unmounted
afterwards unless the container already had it mounted (it is running, or started meanwhile).
"""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator

from tether.engine.containers import ContainerService
from tether.engine.records import Container
from tether.runtime import mounts


@contextlib.asynccontextmanager
async def mounted_overlay(service: ContainerService, c: Container) -> AsyncIterator[Path]:
    """The host path of the container's overlay mount (not its mount namespace: no /proc, no
    bind-mounted hosts files), held under the container's lifecycle lock."""
    rootfs = service.paths.rootfs(c.id)
    async with service.lifecycle_lock(c.id):
        if c.state.status != "running":  # an exit being handled unmounts the root: let it finish
            await service.wait_released(c.id)
        if mounts.is_mounted(rootfs):
            yield rootfs
            return
        await asyncio.to_thread(service.resources.mount_rootfs, c)
        try:
            yield rootfs
        finally:
            await asyncio.to_thread(mounts.unmount, rootfs)
