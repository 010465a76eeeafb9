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
from tether.rules import log_options, process_options
from tether.engine import links as linkrules
from tether.engine import mountspec, securityopt
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
from tether.runtime import spec

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

    async def create(self, body: dict[str, Any], name: str | None) -> Container:
        """`POST /containers/create`: validate, merge with the image, write the record."""
        if not isinstance(body, dict):
            raise BadRequest("config cannot be empty in order to create a container")
        host_config = body.pop("HostConfig", None) or {}
        endpoints_config = (body.pop("NetworkingConfig", None) or {}).get("EndpointsConfig") or {}
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise BadRequest("No image was specified")  # dockerd: config.Image is required
        rules.validate_create(body, host_config)
        process_options.validate_create(host_config)
        policy = rules.RestartPolicy.from_api(host_config.get("RestartPolicy"))
        if host_config.get("AutoRemove") and policy.name != "no":
            raise BadRequest("can't create 'AutoRemove' container with restart policy")
        mode = host_config.get("NetworkMode") or "default"
        if mode == "host" and host_config.get("Links"):
            raise BadRequest(HOST_LINKS_CONFLICT)
        if mode.startswith("container:"):
            if host_config.get("Links"):
                raise BadRequest(CONTAINER_LINKS_CONFLICT)
            raise BadRequest("tether does not support --network container:<name> yet")
        config_mac = process_options.endpoint_mac(mode, endpoints_config)
        if config_mac and not body.get("MacAddress"):
            body["MacAddress"] = config_mac
        user_networks = self.attachment.endpoints_at_create(mode, endpoints_config)
        try:  # dockerd checks these before it looks at the image
            mountspec.validate_mounts(host_config.get("Mounts") or [],
                                      host_config.get("Tmpfs") or {}, os.path.exists)
        except MountError as exc:
            raise ApiError(str(exc), exc.status) from None
        image = await asyncio.to_thread(self.images.resolve, image_ref)
        host_config["LogConfig"] = log_options.settle(host_config.get("LogConfig"),
                                                      self.process_defaults.log_config)
        process_options.settle_at_create(host_config)
        cid = new_container_id()
        full_name = self.registry.reserve_name(name, cid)
        securityopt.parse(host_config.get("SecurityOpt"))  # as dockerd: refused at create
        host_config["SecurityOpt"] = securityopt.with_generated_label(host_config)
        host_config.update(securityopt.system_paths(host_config, spec.MASKED_PATHS,
                                                    spec.READONLY_PATHS))
        children = self.links.resolve(host_config.get("Links") or [])
        if user_networks:  # links on a user network are names for the resolver, not edges
            first = next(iter(user_networks.values()))
            given = [*(first["Links"] or []),
                     *(f"{child.name.lstrip('/')}:{alias}" for child, alias in children)]
            first["Links"] = list(dict.fromkeys(
                "{}:{}".format(*linkrules.parse_link(v)) for v in given)) or None
            children = []
        config = rules.merge_image_config(body, image.config.get("config") or {})
        config["Image"] = image_ref
        config["Hostname"] = config.get("Hostname") or (
            socket.gethostname() if mode == "host" else cid[:12])
        config.setdefault("Domainname", "")
        config.setdefault("User", "")
        config.setdefault("WorkingDir", "")
        for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
            config[key] = bool(config.get(key))
        path, args = rules.command_line(config)
        points = self.container_mounts.plan(host_config, config, self.registry.get)
        c = Container(id=cid, name=full_name, created=now_rfc3339(), image_id=image.id,
                      config=config, host_config=host_config, path=path, args=args,
                      networks=user_networks)
        self.registry.bind_name(full_name, cid)
        self._creating[cid] = points  # no `volume rm` or prune may take them while we wait
        try:
            self.container_mounts.create_volumes(points)
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
