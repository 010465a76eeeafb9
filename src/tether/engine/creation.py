"""`docker create`: a request checked as dockerd checks it, merged with its image, and made into
a container: its name reserved, its endpoints, links and mount plan settled, its volumes made
(and seeded from the image), its files written and its record saved; a failure at any step
takes back what was made, its anonymous volumes included (dockerd's cleanupContainer).
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any, Callable

from tether.rules import config as rules
from tether.rules import process_options
from tether.engine import links as linkrules
from tether.engine import limits, mountspec, securityopt, shared_ns
from tether.engine.container_mounts import ContainerMounts
from tether.engine.generated_files import GeneratedFiles
from tether.engine.link_service import HOST_LINKS_CONFLICT, LinkService
from tether.engine.mountspec import MountError, MountPoint
from tether.engine.netattach import NetworkAttachment
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.rules.times import now_rfc3339
from tether.engine.registry import ContainerRegistry
from tether.rules.errors import ApiError, BadRequest
from tether.image.store import ImageStore
from tether.runtime import oci
from tether.spec import create as spec_create, support
from tether.spec.fields import render
from tether.spec.types import Config, CreateSpec

log = logging.getLogger("tether.containers")

CONTAINER_LINKS_CONFLICT = ("conflicting options: container type network can't be used with "
                            "links. This would result in undefined behavior")


def new_container_id() -> str:
    """64 hex characters whose 12-character prefix is never all digits (as moby's stringid)."""
    while True:
        cid = secrets.token_hex(32)
        if not cid[:12].isdigit():
            return cid


class ContainerCreation:
    """Creates containers; knows the mount plans of those being created."""

    def __init__(self, registry: ContainerRegistry, images: ImageStore, paths: Paths,
                 files: GeneratedFiles, links: LinkService, attachment: NetworkAttachment,
                 container_mounts: ContainerMounts, lower_dirs: Callable[[Container], list[Path]],
                 emit: Callable[[Container, str], None]) -> None:
        self.registry = registry
        self.images = images
        self.paths = paths
        self.files = files
        self.links = links
        self.attachment = attachment
        self.container_mounts = container_mounts
        self.lower_dirs = lower_dirs
        self.emit = emit
        # the daemon's --default-ulimit, --init, --init-path, --log-driver, --log-opt
        self.process_defaults = process_options.DaemonDefaults()
        # the mount plans of containers being created (not yet listed): their volumes are in use
        self._creating: dict[str, list[MountPoint]] = {}

    def volume_users(self, name: str) -> list[str]:
        """IDs of every container (running or not, or still being created) whose mount plan uses
        volume `name`: what keeps it from `volume rm` and `prune` (VolumeService.referrers)."""
        plans = [*((c.id, c.mount_points) for c in self.registry.all()),
                 *self._creating.items()]
        return [cid for cid, points in plans
                if any(mp.type == "volume" and mp.name == name for mp in points)]

    async def create(self, body: dict[str, Any], name: str | None,
                     warnings: list[str] | None = None) -> Container:
        """`POST /containers/create`: the body (decoded by apitypes) typed once, checked as
        dockerd checks it, refused where tether would not apply it, merged with the image;
        dockerd's Warnings (limits the kernel cannot apply) go to `warnings`."""
        if not isinstance(body, dict):
            raise BadRequest("config cannot be empty in order to create a container")
        request = CreateSpec.from_body(body)
        config, host_config = request.config, request.host_config
        endpoints_config = request.networking.endpoints_config or {}
        if not config.image:
            raise BadRequest("No image was specified")  # dockerd: config.Image is required
        spec_create.validate(config, host_config, limits.host_facts())
        found = spec_create.check_resources(host_config, limits.host_facts())
        if warnings is not None:
            warnings.extend(found)
        support.refusals(config, host_config, endpoints_config)
        mode = host_config.network_mode or "default"
        if mode == "host" and host_config.links:
            raise BadRequest(HOST_LINKS_CONFLICT)
        if mode.startswith("container:"):
            if host_config.links:
                raise BadRequest(CONTAINER_LINKS_CONFLICT)
        shared_ns.check_at_create(config, host_config, self.registry.get)
        config.mac_address = config.mac_address or process_options.endpoint_mac(mode, {
            network: settings.mac_address for network, settings in endpoints_config.items()
            if settings is not None})
        rendered = {key: None if value is None else render(value)
                    for key, value in endpoints_config.items()}
        user_networks = self.attachment.endpoints_at_create(mode, rendered)
        bridge_endpoint = self.attachment.bridge_endpoint_at_create(mode, rendered)
        try:  # dockerd checks these before it looks at the image
            mountspec.validate_mounts(host_config.mounts or [], host_config.tmpfs or {},
                                      os.path.exists)
        except MountError as exc:
            raise ApiError(str(exc), exc.status) from None
        image = await asyncio.to_thread(self.images.resolve, config.image)
        logging_ = host_config.log_config  # dockerd settles it once the image is found
        logging_.type, logging_.config = spec_create.log_config(
            logging_.type, logging_.config, self.process_defaults.log_config)
        cid = new_container_id()
        full_name = self.registry.reserve_name(name, cid)
        securityopt.parse(host_config.security_opt)  # as dockerd: refused at create
        as_sent = host_config.to_api(omit=False)
        host_config.security_opt = securityopt.with_generated_label(as_sent)
        paths = securityopt.system_paths(as_sent, oci.MASKED_PATHS, oci.READONLY_PATHS)
        host_config.masked_paths = paths["MaskedPaths"]
        host_config.readonly_paths = paths["ReadonlyPaths"]
        spec_create.apply_defaults(host_config)
        children = self.links.resolve(host_config.links or [])
        if user_networks:  # links on a user network are names for the resolver, not edges
            first = next(iter(user_networks.values()))
            given = [*(first["Links"] or []),
                     *(f"{child.name.lstrip('/')}:{alias}" for child, alias in children)]
            first["Links"] = list(dict.fromkeys(
                "{}:{}".format(*linkrules.parse_link(v)) for v in given)) or None
            children = []
        config = Config.from_api(rules.merge_image_config(config.to_api(omit=False),
                                                          image.config.get("config") or {}))
        config.hostname = config.hostname or (
            socket.gethostname() if mode == "host" else cid[:12])
        path, args = rules.command_line(config.to_api())
        points = self.container_mounts.plan(host_config, config, self.registry.get)
        c = Container(id=cid, name=full_name, created=now_rfc3339(), image_id=image.id,
                      config=config, host_config=host_config, path=path, args=args,
                      network=bridge_endpoint, networks=user_networks)
        self.registry.bind_name(full_name, cid)
        self._creating[cid] = points  # no `volume rm` or prune may take them while we wait
        try:
            self.container_mounts.create_volumes(points, host_config.volume_driver)
            c.mounts = [mp.to_json() for mp in points]
            self.files.write_all(c)
            await self.container_mounts.copy_up(c, self.lower_dirs)
            self.registry.save_or_fail(c)
        except BaseException as exc:  # as dockerd's cleanupContainer: its anonymous volumes go too
            self.registry.unbind_name(full_name)
            del self._creating[cid]
            shutil.rmtree(self.paths.container(cid), ignore_errors=True)
            self.container_mounts.remove_anonymous(points)
            if isinstance(exc, OSError):  # a full disk, say: dockerd's text, no host path
                raise self.registry.disk_error(exc) from None
            raise
        del self._creating[cid]
        self.registry.add(c)
        self.links.register(c, children)
        log.info("container created", extra={"ctx": {"id": cid, "name": full_name}})
        self.emit(c, "create")
        return c
