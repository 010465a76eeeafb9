"""What one run of a container holds on the host, made at start and freed at its end.

A start needs, before runc starts the process: the overlay root mounted, a network namespace
with the container's endpoints (or a donor's namespace joined), the working directory, the OCI
config in the bundle and runc's container created. `set_up` makes all of that; `release` frees
all of it again, whichever way the run ended (an exit, a removal, a start that failed half way,
a container found dead at daemon start-up). The lifecycle (engine/containers.py) decides when;
this module knows what a run is made of, so that the state machine and the host resources can
be read, and changed, apart.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Awaitable

from tether.engine import initlayer, process_config, run_config, runtime_create, shared_ns
from tether.engine.container_mounts import ContainerMounts
from tether.engine.link_service import LinkService, env_of_links, hosts_of_links
from tether.engine.netattach import NetworkAttachment
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.engine.registry import ContainerRegistry
from tether.engine.securityopt import DaemonSecurity
from tether.image.store import ImageStore
from tether.network import netns
from tether.rules.process_options import DaemonDefaults
from tether.runtime import mounts
from tether.runtime.conmon import Runtime
from tether.runtime.user import resolve_user
from tether.state import write_json_atomic

log = logging.getLogger("tether.containers")


async def all_then_first_error(*steps: Awaitable[None]) -> None:
    """Run the steps together; once every one has ended, raise the error of the first that
    failed (in the order given): nothing is still running when the caller cleans up."""
    for result in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


class RunResources:
    """The host side of a container's runs: root mount, namespace, endpoints, bundle."""

    def __init__(self, paths: Paths, images: ImageStore, runtime: Runtime,
                 registry: ContainerRegistry, links: LinkService, attachment: NetworkAttachment,
                 container_mounts: ContainerMounts) -> None:
        self.paths = paths
        self.images = images
        self.runtime = runtime
        self.registry = registry
        self.links = links
        self.attachment = attachment
        self.container_mounts = container_mounts

    def lower_dirs(self, c: Container) -> list[Path]:
        """The overlay's lower dirs, top first: the init layer, then the image's (blocking)."""
        image = self.images.resolve(c.image_id)
        image_lowers = self.images.lower_dirs(image)
        return [initlayer.ensure(self.paths.init_layer(c.id), image_lowers), *image_lowers]

    def mount_rootfs(self, c: Container) -> None:
        """The overlay of the image's layers under the container's own (blocking: callers run
        it in a thread, as mount(2) of an overlay takes milliseconds the loop owes others)."""
        mounts.mount_overlay(self.lower_dirs(c), self.paths.upper(c.id), self.paths.work(c.id),
                             self.paths.rootfs(c.id))

    async def set_up(self, c: Container, security: DaemonSecurity,
                     defaults: DaemonDefaults) -> None:
        """Everything up to runc's created container, whose process waits for `runc start`.
        On failure the caller frees what was made with `release`."""
        rootfs, bundle = self.paths.rootfs(c.id), self.paths.bundle(c.id)
        netns_path = self.paths.netns(c.id)
        settings = run_config.security_settings(c, security)
        joined = shared_ns.namespace_paths(c, self.registry.get)
        own_network = "network" not in joined  # else its donor's: no endpoint of its own
        if own_network and c.network_mode != "host":
            # the namespace and the rootfs need nothing of each other: made at once, each in a
            # thread; a `none` container never joins a network: IPv6 off, as Docker 20.10 has it
            await all_then_first_error(
                asyncio.to_thread(self.mount_rootfs, c),
                asyncio.to_thread(netns.create, netns_path, c.network_mode != "none"))
        else:
            await asyncio.to_thread(self.mount_rootfs, c)
        user = resolve_user(str(rootfs), c.config.user)
        cwd = c.config.working_dir or "/"
        run_config.make_working_dir(rootfs, cwd)
        linked = self.links.linked_children(c)
        if c.host_config.ipc_mode == "shareable":
            await asyncio.to_thread(shared_ns.mount_shm, c, self.paths)
        shm = shared_ns.shm_source(c, self.paths, self.registry.get)
        meanwhile = own_network and run_config.endpoints_during_create(c)
        if not own_network:
            netns_path = Path(joined["network"])
        elif not meanwhile:
            await self.attachment.join_at_start(c, netns_path, hosts_of_links(linked))
        c.started_link_env = env_of_links(linked)
        c.link_ips = {edge.name: child.network["IPAddress"] for edge, child in linked}
        oci = run_config.oci_config(c, rootfs, netns_path, cwd, user,
                                    self.container_mounts.oci_mounts(c), settings,
                                    process_config.parts(c, rootfs, defaults), joined, shm)
        bundle.mkdir(parents=True, exist_ok=True)
        # no fsync: runc reads it from the page cache now, every start writes it anew
        write_json_atomic(bundle / "config.json", oci, sync="none")
        if meanwhile:  # the process waits for `runc start`: its endpoints are made now
            await all_then_first_error(
                self.attachment.join_at_start(c, netns_path, hosts_of_links(linked)),
                runtime_create.create(self.runtime, c, bundle, self.paths.log(c.id)))
        else:
            await runtime_create.create(self.runtime, c, bundle, self.paths.log(c.id))

    async def release(self, c: Container | str) -> None:
        """Free what a run holds: runc state and conmon files, the network endpoint and its
        ports, the rootfs mount, the netns. Takes a bare ID for a container with no record."""
        cid = c if isinstance(c, str) else c.id
        try:
            await self.runtime.delete(cid)
        except Exception:
            log.exception("runtime delete failed", extra={"ctx": {"id": cid}})
        await self.attachment.leave_all(c)
        if not isinstance(c, str):
            self.container_mounts.release(c)
        await self.attachment.stop_dns(cid)
        await asyncio.to_thread(mounts.unmount, self.paths.rootfs(cid))
        if (shm := shared_ns.shm_path(self.paths, cid)).exists():  # only a shareable's
            await asyncio.to_thread(mounts.unmount, shm)
        await asyncio.to_thread(netns.remove, self.paths.netns(cid))
        shutil.rmtree(self.paths.bundle(cid), ignore_errors=True)
