"""The containers service: create, start, stop, kill, wait, remove, rename, list, and recovery.

It composes the image store, the runtime driver and the network namespace helpers, and owns the
container records. Each lifecycle change of a container runs under that container's lock, and
every exit, whoever caused it, goes through one path (`_on_exit`) that records the code, frees
what the run held and applies the restart policy, so that a container is in one consistent state
whichever way it stopped, including while the daemon was down.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from tether.engine import diskusage, initlayer
from tether.engine import links as linkrules
from tether.engine import mountspec, securityopt
from tether.engine.container_mounts import ContainerMounts
from tether.engine.events import EventBus
from tether.engine.linkgraph import Edge, LinkGraph
from tether.engine.mountspec import MountError, MountPoint
from tether.engine.netattach import KEPT_BRIDGE_FIELDS, UserNetworks
from tether.engine.paths import CONTAINER_DIR_MODE, Paths
from tether.engine.records import Container, State
from tether.engine.volumes import VolumeService
from tether.image.store import ImageStore
from tether.network import files, netns
from tether.network.manager import NetworkManager
from tether.rules import config as rules
from tether.rules import names as naming
from tether.rules import portspec
from tether.rules.errors import (INTERNAL_ERROR, ApiError, BadRequest, Conflict, NotFound,
                                 NotModified, os_error_text, runtime_create_error,
                                 start_failure_code)
from tether.rules.times import now_rfc3339, parse_rfc3339
from tether.runtime import mounts, rootfd, seccomp_host, spec
from tether.runtime.conmon import Attachment, Runtime
from tether.runtime.seccomp import ProfileError
from tether.runtime.user import resolve_user
from tether.state import read_json, remove_stale_temp_files, write_json_atomic

log = logging.getLogger("tether.containers")

HOST_LINKS_CONFLICT = ("conflicting options: host type networking can't be used with links. "
                       "This would result in undefined behavior")
CONTAINER_LINKS_CONFLICT = ("conflicting options: container type network can't be used with "
                            "links. This would result in undefined behavior")
RESTART_BACKOFF_START = 0.1
RESTART_BACKOFF_MAX = 60.0
RESTART_BACKOFF_RESET_AFTER = 10.0
RECORD_RETRY_INTERVAL = 1.0  # seconds between attempts to write records a full disk refused


def new_container_id() -> str:
    """64 hex characters whose 12-character prefix is never all digits (as moby's stringid)."""
    while True:
        cid = secrets.token_hex(32)
        if not cid[:12].isdigit():
            return cid


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


class ContainerService(UserNetworks):
    """All containers of one daemon."""

    def __init__(self, paths: Paths, images: ImageStore, runtime: Runtime, network: NetworkManager,
                 volumes: VolumeService, host_resolv: Path = Path("/etc/resolv.conf"),
                 host_hosts: Path = Path("/etc/hosts"), events: EventBus | None = None) -> None:
        self.paths = paths
        self.images = images
        self.runtime = runtime
        self.network = network
        self.volumes = volumes
        self.host_resolv = host_resolv
        self.host_hosts = host_hosts
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        self._runs: dict[str, _Run] = {}
        self._tasks: set[asyncio.Task] = set()
        self.links = LinkGraph()
        self.events = events or EventBus()
        self.container_mounts = ContainerMounts(paths, images, volumes, self.events)
        # the embedded DNS resolver (tether.network.resolver.EmbeddedResolver), set by the daemon:
        # it serves every running container that is on a user-defined network
        self.resolver: Any = None
        # the mount plans of containers being created (not yet listed): their volumes are in use
        self._creating: dict[str, list[MountPoint]] = {}
        self.security = securityopt.DaemonSecurity()  # the daemon's flags, set by the daemon
        self._unsaved: set[str] = set()   # containers whose last record write failed
        self._flusher: asyncio.Task | None = None

    # ---- records and lookup -------------------------------------------------------------

    def _save(self, c: Container) -> None:
        """Write the record of something that already happened (a start, an exit, a pause, a
        stop asked for). The kernel's state is the truth and stays so in memory: when the write
        fails (a full data root) the record is kept meanwhile under the exec root, another
        filesystem that the next daemon reads first, and retried until it lands
        (`_flush_records`)."""
        data = c.to_json()
        try:
            self._write_record(c.id, data)
        except OSError as exc:
            if c.id not in self._unsaved:
                log.warning("container record not written, will retry", extra={"ctx": {
                    "id": c.id, "error": os_error_text(exc, self.paths.data_root)}})
            try:
                write_json_atomic(self.paths.pending_record(c.id), data)
            except OSError:
                log.exception("container record not kept either", extra={"ctx": {"id": c.id}})
            self._mark_unsaved(c.id)

    def _save_or_fail(self, c: Container, data: dict[str, Any] | None = None) -> None:
        """Write a record a change asked for (`data`, the record with the change) before the
        change is applied: when the write fails the request fails with dockerd's text and
        nothing changes, in memory or on disk."""
        try:
            self._write_record(c.id, c.to_json() if data is None else data)
        except OSError as exc:
            raise self._disk_error(exc) from None

    def _write_record(self, cid: str, data: dict[str, Any]) -> None:
        """The record in the data root; the copy kept under the exec root is then stale."""
        write_json_atomic(self.paths.record(cid), data)
        if cid in self._unsaved:
            self._forget_unsaved(cid)

    def _mark_unsaved(self, cid: str) -> None:
        self._unsaved.add(cid)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_records())

    def _forget_unsaved(self, cid: str) -> None:
        self._unsaved.discard(cid)
        self.paths.pending_record(cid).unlink(missing_ok=True)

    def _disk_error(self, exc: OSError) -> ApiError:
        """dockerd's `write <path>: no space left on device` (500), the path relative to the
        data root: a reply never shows where the data root is."""
        return ApiError(os_error_text(exc, self.paths.data_root), 500)

    def _error_text(self, exc: BaseException) -> str:
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

    async def _flush_records(self) -> None:
        """Retry the records a full disk refused until all are written."""
        while self._unsaved:
            await asyncio.sleep(RECORD_RETRY_INTERVAL)
            self._write_unsaved()

    def _write_unsaved(self) -> None:
        """Write the records a full disk refused, stopping at the first that still fails."""
        for cid in list(self._unsaved):
            c = self._containers.get(cid)
            if c is None:
                self._forget_unsaved(cid)
                continue
            try:
                self._write_record(cid, c.to_json())
            except OSError:
                return
            log.info("container record written", extra={"ctx": {"id": cid}})

    def emit(self, c: Container, action: str, **extra: str) -> None:
        """A container event with dockerd's attributes: the labels, image, name, then extras."""
        attributes = {**(c.config.get("Labels") or {}), "image": c.config.get("Image", ""),
                      "name": c.name.lstrip("/"), **extra}
        self.events.publish("container", action, c.id, attributes)

    def _emit_network(self, cid: str, action: str) -> None:
        """dockerd's `network connect`/`disconnect` events of the bridge network."""
        self.events.publish("network", action, self.network.network_id,
                            {"container": cid, "name": "bridge", "type": "bridge"})

    def _run(self, cid: str) -> _Run:
        return self._runs.setdefault(cid, _Run())

    def lifecycle_lock(self, cid: str) -> asyncio.Lock:
        """The lock every start, stop and removal of a container holds: a caller that needs the
        container to stay as it is (e.g. copying out of a stopped one) takes it too."""
        return self._run(cid).lock

    async def wait_released(self, cid: str) -> None:
        """Until the exit being handled now has freed the run (unmounted its root): a container
        reads as exited from the first step of that, and its waiters may already be answered."""
        exited = self._run(cid).exited
        if exited is not None:
            await exited.wait()

    def get(self, ref: str) -> Container:
        """Find a container by full ID, name (with or without `/`) or unique ID prefix."""
        if not ref:  # dockerd's GetContainer: e.g. a network connect body without Container
            raise BadRequest('invalid name or ID supplied: ""')
        if ref in self._containers:
            return self._containers[ref]
        cid = self._names.get("/" + ref.lstrip("/"))
        if cid in self._containers:
            return self._containers[cid]
        if re.fullmatch(r"[0-9a-f]+", ref):
            matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise BadRequest(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return list(self._containers.values())

    def inspect(self, c: Container) -> dict[str, Any]:
        """Inspect with `HostConfig.Links` rebuilt from the link graph (`/db:/web/db`)."""
        view = c.inspect(self.paths.views(c.id), self.network_settings(c))
        links = []
        for edge in self.links.children(c.id):
            child = self._containers.get(edge.child_id)
            links.append(f"{child.name if child else edge.child_name}:{edge.name}")
        view["HostConfig"]["Links"] = links or None
        return view

    def summary(self, c: Container) -> dict[str, Any]:
        """A list item; a linked container's Names include its link names (`/web/db`)."""
        item = c.summary(self.network_settings(c), self.published_ports(c))
        item["Names"] = sorted([c.name, *self.links.names_of(c.id)])
        return item

    async def sized_summaries(self, items: list[Container]) -> list[dict[str, Any]]:
        """List items with SizeRw and SizeRootFs (`ps -s`, `system df`); the upper dirs are
        walked in a thread, the records read here on the loop."""
        summaries = [self.summary(c) for c in items]
        image_sizes = [self._image_size(c.image_id) for c in items]
        uppers = [self.paths.upper(c.id) for c in items]
        sizes = await asyncio.to_thread(lambda: [diskusage.directory_size(u) for u in uppers])
        return [diskusage.with_sizes(item, rw, image) for item, rw, image
                in zip(summaries, sizes, image_sizes, strict=True)]

    def lower_dirs(self, c: Container) -> list[Path]:
        """The overlay's lower dirs, top first: the init layer, then the image's (blocking)."""
        image = self.images.resolve(c.image_id)
        image_lowers = self.images.lower_dirs(image)
        return [initlayer.ensure(self.paths.init_layer(c.id), image_lowers), *image_lowers]

    def _image_size(self, image_id: str) -> int:
        try:
            return self.images.resolve(image_id).size
        except NotFound:  # a force-removed image: its layers stay, its size is gone
            return 0

    def network_settings(self, c: Container) -> dict[str, Any]:
        user = [(entry["Name"], entry) for entry in c.networks.values()]
        return self.network.settings(c.network_mode, c.network, str(self.paths.netns(c.id)),
                                     user)

    def published_ports(self, c: Container) -> list[dict[str, Any]]:
        live = [c.network, *(entry.get("State") or {} for entry in c.networks.values())]
        holder = next((state for state in live if state.get("IPAddress") and "Ports" in state),
                      {})
        return self.network.list_ports(holder)

    def users_of_image(self, image_id: str) -> list[tuple[str, bool]]:
        """(container ID, running) of every container made from an image, for `rmi`."""
        return [(c.id, c.state.running) for c in self._containers.values() if c.image_id == image_id]

    def volume_users(self, name: str) -> list[str]:
        """IDs of every container (running or not, or still being created) whose mount plan uses
        volume `name`: what keeps it from `volume rm` and `prune` (VolumeService.referrers)."""
        plans = [*((c.id, c.mount_points) for c in self._containers.values()),
                 *self._creating.items()]
        return [cid for cid, points in plans
                if any(mp.type == "volume" and mp.name == name for mp in points)]

    # ---- create -------------------------------------------------------------------------

    def _reserve_name(self, name: str | None, cid: str) -> str:
        if not name:
            return "/" + naming.generate_name(lambda n: "/" + n in self._names, cid)
        if not naming.valid_name(name):
            raise BadRequest(naming.invalid_name_message(name.lstrip("/")))
        name = "/" + name.lstrip("/")
        holder = self._names.get(name)
        if holder:
            raise Conflict(f'Conflict. The container name "{name}" is already in use by container '
                           f'"{holder}". You have to remove (or rename) that container to be able '
                           "to reuse that name.")
        return name

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
        user_networks = self._endpoints_at_create(mode, endpoints_config)
        try:  # dockerd checks these before it looks at the image
            mountspec.validate_mounts(host_config.get("Mounts") or [],
                                      host_config.get("Tmpfs") or {}, os.path.exists)
        except MountError as exc:
            raise ApiError(str(exc), exc.status) from None
        image = await asyncio.to_thread(self.images.resolve, image_ref)
        cid = new_container_id()
        full_name = self._reserve_name(name, cid)
        securityopt.parse(host_config.get("SecurityOpt"))  # as dockerd: refused at create
        host_config["SecurityOpt"] = securityopt.with_generated_label(host_config)
        host_config.update(securityopt.system_paths(host_config, spec.MASKED_PATHS,
                                                    spec.READONLY_PATHS))
        children = self._resolve_links(host_config.get("Links") or [])
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
        points = self.container_mounts.plan(host_config, config, self.get)
        c = Container(id=cid, name=full_name, created=now_rfc3339(), image_id=image.id,
                      config=config, host_config=host_config, path=path, args=args,
                      networks=user_networks)
        self._names[full_name] = cid
        self._creating[cid] = points  # no `volume rm` or prune may take them while we wait
        try:
            self.container_mounts.create_volumes(points)
            c.mounts = [mp.to_json() for mp in points]
            self._write_files(c)
            await self.container_mounts.copy_up(c, self.lower_dirs)
            self._save_or_fail(c)
        except BaseException as exc:  # as dockerd's cleanupContainer: its anonymous volumes go too
            del self._names[full_name]
            del self._creating[cid]
            shutil.rmtree(self.paths.container(cid), ignore_errors=True)
            self.container_mounts.remove_anonymous(points)
            if isinstance(exc, OSError):  # a full disk, say: dockerd's text, no host path
                raise self._disk_error(exc) from None
            raise
        del self._creating[cid]
        self._containers[cid] = c
        self._register_links(c, children)
        log.info("container created", extra={"ctx": {"id": cid, "name": full_name}})
        self.emit(c, "create")
        return c

    # ---- links --------------------------------------------------------------------------

    def _resolve_links(self, values: list[str]) -> list[tuple[Container, str]]:
        """The containers a new container links to, checked as dockerd does at create."""
        resolved = []
        for value in values:
            try:
                name, alias = linkrules.parse_link(value)
            except linkrules.LinkError as exc:
                raise ApiError(str(exc), 500) from None
            try:
                child = self.get(name)
            except NotFound as exc:
                raise BadRequest(f"could not get container for {name}: {exc.message}") from None
            if child.network_mode == "host":
                raise BadRequest(HOST_LINKS_CONFLICT)
            resolved.append((child, alias))
        return resolved

    def _register_links(self, parent: Container, children: list[tuple[Container, str]]) -> None:
        """Reserve `/parent/alias` for each child; a name already taken drops that link, as in
        Docker (`--link a:x --link b:x` keeps a)."""
        for child, alias in children:
            name = linkrules.link_name(parent.name, alias)
            if name in self._names:
                log.warning("link name taken, link ignored", extra={"ctx": {"name": name}})
                continue
            self._names[name] = child.id
            # the alias that names hosts lines and variables is the link name's last element
            self.links.add(Edge(name, parent.id, child.id, child.name, name.rsplit("/", 1)[-1]))

    def _drop_links_of(self, parent: Container) -> None:
        for edge in self.links.children(parent.id):
            self.links.remove(edge.name)
            self._names.pop(edge.name, None)

    def _linked_children(self, parent: Container) -> list[tuple[Edge, Container]]:
        """Every link of a parent with its running child; dockerd's error for one that is not."""
        found = []
        for edge in self.links.children(parent.id):
            child = self._containers.get(edge.child_id)
            if child is None or child.state.status != "running":
                raise ApiError(f"Cannot link to a non running container: {edge.child_name} AS "
                               f"{edge.name}", 500)
            if not child.network.get("IPAddress"):
                raise ApiError(f"Cannot link to {child.name}, as it does not belong to the "
                               "default network", 500)
            found.append((edge, child))
        return found

    def link_env(self, parent: Container) -> list[str]:
        """The link variables of a parent, from its children as they are now."""
        return _env_of_links(self._linked_children(parent))

    def _refresh_parents(self, child: Container) -> None:
        """A child got a new address: every running parent's hosts lines for it follow, in place
        (the file is bind-mounted, so the same inode is rewritten); env vars stay as they were."""
        address = child.network.get("IPAddress")
        if not address:
            return
        for edge in self.links.parents(child.id):
            parent = self._containers.get(edge.parent_id)
            if parent is None or parent.state.status != "running":
                continue
            path = self.paths.container(parent.id) / "hosts"
            text = files.update_hosts_alias(path.read_text(), edge.alias, address)
            _rewrite_in_place(path, text)

    async def _update_link_accepts(self) -> None:
        """With `--icc=false`, linked pairs may talk on the child's exposed ports: the accepts
        follow the containers' current addresses (Docker's go stale when a child restarts)."""
        if self.network.icc:  # every pair may talk: there is nothing to compute on this path
            return
        accepts = []
        for edge in self.links.edges():
            parent, child = self._containers.get(edge.parent_id), self._containers.get(edge.child_id)
            if not (parent and child and parent.network.get("IPAddress")
                    and child.network.get("IPAddress")):
                continue
            for key in child.config.get("ExposedPorts") or {}:
                number, proto = portspec.port_key(key)
                accepts.append((proto, parent.network["IPAddress"], child.network["IPAddress"],
                                number))
        await self.network.set_link_accepts(sorted(set(accepts)))

    def remove_link(self, ref: str) -> None:
        """`docker rm --link /web/db`: free the name, unlink, drop the parent's hosts line."""
        name = "/" + ref.lstrip("/")
        edge = self.links.get(name)
        if edge is None:
            if name in self._names and name.count("/") == 1:
                raise ApiError("Conflict, cannot remove the default link name of the container", 500)
            raise NotFound(f"No such container: {ref.lstrip('/')}")
        parent = self._containers.get(edge.parent_id)
        if parent is not None:
            data = parent.to_json()
            data["host_config"]["Links"] = [
                v for v in parent.host_config.get("Links") or []
                if linkrules.link_name(parent.name, linkrules.parse_link(v)[1]) != name]
            self._save_or_fail(parent, data)
            parent.host_config["Links"] = data["host_config"]["Links"]
        self.links.remove(name)
        self._names.pop(name, None)
        if parent is not None:
            if parent.state.status == "running":
                path = self.paths.container(parent.id) / "hosts"
                _rewrite_in_place(path, files.remove_hosts_alias(path.read_text(), edge.alias))

    def links_view(self, parent: Container) -> list[dict[str, Any]]:
        """tether's link report: each link of a parent, the child now, and whether the
        parent's first process still holds an address the child no longer has."""
        view = []
        for edge in self.links.children(parent.id):
            child = self._containers.get(edge.child_id)
            running = child is not None and child.state.status == "running"
            address = child.network.get("IPAddress", "") if running else ""
            started_with = parent.link_ips.get(edge.name, "")
            stale = bool(parent.state.status == "running" and started_with and address
                         and started_with != address)
            env = rules.process_env(parent.config, parent.config["Hostname"], parent.tty,
                                    parent.started_link_env) if stale else []
            view.append({
                "Name": edge.name, "Parent": parent.name, "Alias": edge.alias,
                "Child": child.name if child else edge.child_name, "ChildID": edge.child_id,
                "ChildRunning": running, "IPAddress": address,
                "Ports": sorted((child.config.get("ExposedPorts") or {}).keys()) if child else [],
                "Stale": stale,
                "StaleVariables": linkrules.stale_variables(env, edge.name, started_with, address)
                if stale else []})
        return view

    def _write_files(self, c: Container) -> None:
        """hostname, hosts and resolv.conf, bind-mounted into the container at start.

        With `--network host` the container sees the host's own hosts and resolv.conf."""
        base = self.paths.container(c.id)
        base.mkdir(CONTAINER_DIR_MODE, parents=True, exist_ok=True)  # its rootfs and upper dir's guard
        for d in (self.paths.upper(c.id), self.paths.work(c.id), self.paths.rootfs(c.id)):
            d.mkdir(parents=True, exist_ok=True)
        _rewrite_in_place(base / "hostname", files.hostname_file(c.config["Hostname"]))
        if c.network_mode == "host":
            _rewrite_in_place(base / "hosts", _read_or_empty(self.host_hosts))
            _rewrite_in_place(base / "resolv.conf", _read_or_empty(self.host_resolv))
            return
        self._write_hosts(c)
        self._write_resolv(c)

    def _write_resolv(self, c: Container) -> None:
        """resolv.conf: the host's, or the embedded resolver's once the container is on a user
        network (then it stays so, as in Docker); rewritten in place for a running container."""
        host_resolv = _read_or_empty(self.host_resolv)
        if self._on_user_network(c):
            text = files.embedded_resolv_conf(host_resolv, c.host_config.get("DnsSearch") or [],
                                              c.host_config.get("DnsOptions") or [])
        else:
            text = files.resolv_conf(host_resolv, c.host_config.get("Dns") or [],
                                     c.host_config.get("DnsSearch") or [],
                                     c.host_config.get("DnsOptions") or [])
        _rewrite_in_place(self.paths.container(c.id) / "resolv.conf", text)

    def _write_hosts(self, c: Container, links: list[tuple[str, str]] = ()) -> None:
        """/etc/hosts with the container's current address and its links' lines."""
        extra = [tuple(reversed(h.split(":", 1))) for h in c.host_config.get("ExtraHosts") or []]
        more = [(entry.get("State") or {}).get("IPAddress", "") for entry in c.networks.values()]
        text = files.hosts_file(c.config["Hostname"], c.network.get("IPAddress"),
                                c.config.get("Domainname", ""), extra=extra, links=links,
                                more=more)
        _rewrite_in_place(self.paths.container(c.id) / "hosts", text)

    def _drop_own_hosts_lines(self, c: Container) -> None:
        path = self.paths.container(c.id) / "hosts"
        own = c.config["Hostname"] + (f".{c.config['Domainname']}"
                                      if c.config.get("Domainname") else "")
        _rewrite_in_place(path, files.remove_hosts_alias(path.read_text(), own))

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
        cid = c.id
        rootfs = self.paths.rootfs(cid)
        bundle = self.paths.bundle(cid)
        netns_path = self.paths.netns(cid)
        try:
            security = self._security(c)
            lowers = await asyncio.to_thread(self.lower_dirs, c)
            mounts.mount_overlay(lowers, self.paths.upper(cid), self.paths.work(cid), rootfs)
            uid, gid, groups, home = resolve_user(str(rootfs), c.config.get("User") or "")
            cwd = c.config.get("WorkingDir") or "/"
            _make_working_dir(rootfs, cwd)
            linked = self._linked_children(c)
            host_network = c.network_mode == "host"
            if not host_network:
                await asyncio.to_thread(netns.create, netns_path)
            c.next_ifindex = 0
            if self._on_bridge(c):  # as dockerd: the default bridge first, as eth0
                kept = {k: v for k, v in c.network.items() if k in KEPT_BRIDGE_FIELDS}
                c.network = {**await self.network.connect(cid, c.name, c.config, c.host_config,
                                                          netns_path), "SandboxID": cid, **kept}
                c.next_ifindex = 1
                self._emit_network(cid, "connect")
                self._write_hosts(c, _hosts_of_links(linked))
                self._refresh_parents(c)  # as dockerd: when the endpoint joins, not at the end
            if c.networks or c.network_mode not in ("bridge", "none", "host"):
                await self._join_user_networks(c, netns_path)
                self._write_hosts(c)
                await self._serve_dns(c)  # before the process runs: its first lookup needs it
            c.started_link_env = _env_of_links(linked)
            c.link_ips = {edge.name: child.network["IPAddress"] for edge, child in linked}
            env = rules.process_env(c.config, c.config["Hostname"], c.tty, c.started_link_env)
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={home}")
            oci = spec.build_spec(
                rootfs=str(rootfs), args=[c.path, *c.args], env=env, cwd=cwd, uid=uid, gid=gid,
                additional_gids=groups, tty=c.tty, hostname=c.config["Hostname"],
                netns_path=None if host_network else str(netns_path),
                mounts=self.container_mounts.oci_mounts(c), cgroups_path=f"/tether/{cid}",
                readonly_rootfs=bool(c.host_config.get("ReadonlyRootfs")),
                cap_add=c.host_config.get("CapAdd") or [], cap_drop=c.host_config.get("CapDrop") or [],
                privileged=bool(c.host_config.get("Privileged")),
                rootfs_propagation=mountspec.rootfs_propagation(c.mount_points), **security)
            if host_network:  # share the daemon's namespace, whose net.* sysctls are not ours
                linux = oci["linux"]
                linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
                linux["sysctl"] = {k: v for k, v in linux.get("sysctl", {}).items()
                                   if not k.startswith("net.")}
            bundle.mkdir(parents=True, exist_ok=True)
            write_json_atomic(bundle / "config.json", oci)
            try:
                await self.runtime.create(cid, bundle, tty=c.tty,
                                          stdin=bool(c.config.get("OpenStdin")),
                                          # dockerd closes stdin at a client's EOF only
                                          # without a tty: a detach must leave it open
                                          stdin_once=bool(c.config.get("StdinOnce"))
                                          and not c.tty,
                                          log_path=self.paths.log(cid))
            except RuntimeError as exc:
                raise BadRequest(runtime_create_error(str(exc))) from exc
            await self._hand_over_attaches(c, run)
            pid = await self.runtime.start(cid)
        except Exception as exc:
            await self._release(c)
            message = self._error_text(exc)
            # as dockerd: an earlier exit's code stays, else 128; the runtime's "not found" or
            # "permission denied" for the command is 127/126 (not a missing file of ours)
            code = c.state.exit_code or 128
            if isinstance(exc, RuntimeError) or isinstance(exc.__cause__, RuntimeError):
                code = start_failure_code(message, code)
            c.state = State(status="created" if not c.has_been_started else "exited",
                            exit_code=code, error=message, finished_at=c.state.finished_at,
                            started_at=c.state.started_at)
            self._save(c)
            self._fail_attaches(run)
            if c.host_config.get("AutoRemove"):  # as dockerd: `run --rm` waits for the removal
                self._background(self._auto_remove(c))
            if isinstance(exc, ApiError):
                raise
            status = 500 if isinstance(exc, OSError) or message == INTERNAL_ERROR else 400
            raise ApiError(message, status) from exc
        c.state = State(status="running", pid=pid, started_at=now_rfc3339())
        c.has_been_started = True
        self._save(c)
        run.exited = asyncio.Event()
        run.watcher = asyncio.create_task(self._watch(c))
        await self._update_link_accepts()
        log.info("container started", extra={"ctx": {"id": cid, "pid": pid}})
        self.emit(c, "start")

    def _security(self, c: Container) -> dict[str, Any]:
        """build_spec's security settings for this container: seccomp (its SecurityOpt over the
        daemon's defaults, the profile translated for its capabilities), no-new-privileges, and
        the masked and read-only paths stored at create."""
        options = securityopt.parse(c.host_config.get("SecurityOpt"))
        privileged = bool(c.host_config.get("Privileged"))
        filtered, profile = securityopt.seccomp_profile(options, privileged,
                                                        self.security.seccomp_profile)
        section = None
        if filtered:
            caps = spec.capabilities(c.host_config.get("CapAdd") or [],
                                     c.host_config.get("CapDrop") or [], privileged)
            try:
                section = seccomp_host.oci_section(profile, caps)
            except ProfileError as exc:
                raise ApiError(str(exc)) from None  # a 500, as dockerd
        nnp = options.no_new_privileges
        return {"seccomp": section,
                "no_new_privileges": self.security.no_new_privileges if nnp is None else nnp,
                "masked_paths": c.host_config.get("MaskedPaths"),
                "readonly_paths": c.host_config.get("ReadonlyPaths")}

    async def _hand_over_attaches(self, c: Container, run: _Run) -> None:
        """Clients that attached before start get the container's stdio before its first byte."""
        pending, run.pending_attach = run.pending_attach, []
        for fut in pending:
            if not fut.done():
                fut.set_result(await self.runtime.attach(c.id))

    def _fail_attaches(self, run: _Run) -> None:
        pending, run.pending_attach = run.pending_attach, []
        for fut in pending:
            if not fut.done():
                fut.set_result(None)

    async def _release(self, c: Container | str) -> None:
        """Free what a run holds: runc state and conmon files, the network endpoint and its
        ports, the rootfs mount, the netns. Takes a bare ID for a container with no record."""
        cid = c if isinstance(c, str) else c.id
        try:
            await self.runtime.delete(cid)
        except Exception:
            log.exception("runtime delete failed", extra={"ctx": {"id": cid}})
        if not isinstance(c, str):  # first: the endpoint that published the ports frees them
            await self._leave_user_networks(c)
        state = {} if isinstance(c, str) else c.network
        try:
            await self.network.disconnect(cid, state)
        except Exception:
            log.exception("network disconnect failed", extra={"ctx": {"id": cid}})
        if state.get("EndpointID"):
            self._emit_network(cid, "disconnect")
        if not isinstance(c, str):
            c.network = {k: v for k, v in state.items()
                         if k in ("NetworkID", "SandboxID", *KEPT_BRIDGE_FIELDS)}
            self.container_mounts.release(c)
        if self.resolver is not None:
            try:
                await self.resolver.stop(cid)
            except Exception:
                log.exception("embedded DNS stop failed", extra={"ctx": {"id": cid}})
        await asyncio.to_thread(mounts.unmount, self.paths.rootfs(cid))
        await asyncio.to_thread(netns.remove, self.paths.netns(cid))
        shutil.rmtree(self.paths.bundle(cid), ignore_errors=True)

    # ---- exits, restart policies --------------------------------------------------------

    async def _watch(self, c: Container) -> None:
        try:
            code = await self.runtime.wait(c.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("waiting for container failed", extra={"ctx": {"id": c.id}})
            code = 255
        await self._on_exit(c, code)

    async def _on_exit(self, c: Container, code: int) -> None:
        run = self._run(c.id)
        started = c.state.started_at
        c.state = State(status="exited", exit_code=code, started_at=started,
                        finished_at=now_rfc3339())
        self.emit(c, "die", exitCode=str(code))  # before the network's `disconnect`, as dockerd
        try:  # whatever fails here, the waiters (stop, rm -f) must hear of the exit
            await self._release(c)
            c.link_ips, c.started_link_env = {}, []
            self._save(c)
            await self._update_link_accepts()
        except Exception:
            log.exception("clean-up after an exit failed", extra={"ctx": {"id": c.id}})
        log.info("container exited", extra={"ctx": {"id": c.id, "code": code}})
        waiters, run.exit_waiters = run.exit_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(code)
        if run.exited:
            run.exited.set()
        if c.host_config.get("AutoRemove"):
            self._background(self._auto_remove(c))
            return
        policy = rules.RestartPolicy.from_api(c.host_config.get("RestartPolicy"))
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
        self._save(c)
        await asyncio.sleep(run.backoff)
        async with run.lock:
            if c.id not in self._containers or c.state.status != "restarting" or c.stopped_by_user:
                return
            c.restart_count += 1
            try:
                await self._start_locked(c, run)
            except Exception:
                log.exception("restart failed", extra={"ctx": {"id": c.id}})
                c.state.status = "exited"
                self._save(c)

    # ---- stop, kill, restart ------------------------------------------------------------

    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        """SIGTERM (or the StopSignal), then SIGKILL after `timeout` seconds (default 10)."""
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
            self._save(c)
            return
        if c.state.status != "running":
            raise NotModified()
        c.stopped_by_user = True
        self._save(c)
        stop_signal = rules.parse_signal(sig or c.config.get("StopSignal"), signal.SIGTERM)
        timeout = 10 if timeout is None else timeout
        exited = run.exited
        await self._signal(c, stop_signal)
        try:
            await asyncio.wait_for(exited.wait(), None if timeout < 0 else timeout)
        except asyncio.TimeoutError:
            await self._signal(c, signal.SIGKILL)
            await exited.wait()
        self.emit(c, "stop")

    async def _signal(self, c: Container, number: int) -> None:
        """Signal the container's process (a `kill` event); a paused one is thawed to take it."""
        self.emit(c, "kill", signal=str(int(number)))
        await self.runtime.kill(c.id, number)
        if c.state.paused:
            await self.runtime.resume(c.id)
            c.state.paused = False
            self._save(c)

    async def kill(self, ref: str, sig: str | None = None) -> None:
        c = self.get(ref)
        number = rules.parse_signal(sig, signal.SIGKILL)
        if c.state.status != "running":
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        c.stopped_by_user = True  # as dockerd: a killed container is not restarted by its policy
        self._save(c)
        await self._signal(c, number)
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
            if c.id not in self._containers:
                return
            if c.state.status == "restarting" and run.restarter:
                run.restarter.cancel()
            if c.state.status == "running":
                c.stopped_by_user = True
                await self._signal(c, signal.SIGKILL)
                await run.exited.wait()
            c.state.status = "removing"
            await self._release(c)
            del self._containers[c.id]
            self._forget_unsaved(c.id)
            self._names.pop(c.name, None)
            self._drop_links_of(c)
            shutil.rmtree(self.paths.container(c.id), ignore_errors=True)
            if volumes:
                self.container_mounts.remove_anonymous(c.mount_points)
        self._runs.pop(c.id, None)
        for fut in run.removal_waiters:
            if not fut.done():
                fut.set_result(c.state.exit_code)
        self._fail_attaches(run)
        log.info("container removed", extra={"ctx": {"id": c.id}})
        self.emit(c, "destroy")

    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        if not new_name:
            raise BadRequest("Neither old nor new names may be empty")
        if not naming.valid_name(new_name):
            raise BadRequest(naming.invalid_name_message(new_name.lstrip("/")))
        full = "/" + new_name.lstrip("/")
        if full == c.name:
            raise BadRequest("Renaming a container with the same name as its current name")
        full = self._reserve_name(new_name, c.id)
        self._save_or_fail(c, {**c.to_json(), "name": full})
        self._names.pop(c.name, None)
        self._names[full] = c.id
        for edge in self.links.children(c.id):  # the parent's link names move with it
            self.links.remove(edge.name)
            self._names.pop(edge.name, None)
            moved = Edge(linkrules.link_name(full, edge.alias), c.id, edge.child_id,
                         edge.child_name, edge.alias)
            self.links.add(moved)
            self._names[moved.name] = edge.child_id
        old, c.name = c.name, full
        self.emit(c, "rename", oldName=old)

    # ---- attach, resize -----------------------------------------------------------------

    async def attach(self, ref: str) -> Attachment | None:
        """The container's stdio; before start, wait until start hands it over."""
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

    # ---- pause, unpause, update ---------------------------------------------------------

    async def pause(self, ref: str) -> None:
        """Freeze the container's processes (runc pause), with dockerd's refusals."""
        c = self.get(ref)
        async with self._run(c.id).lock:
            if c.state.status != "running":
                raise Conflict(f"Container {c.id} is not running")
            if c.state.paused:
                raise Conflict(f"Container {c.id} is already paused")
            await self._runc_call(c, self.runtime.pause, "pause")
            c.state.paused = True
            self._save(c)
        self.emit(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self._run(c.id).lock:
            if not c.state.paused:
                raise Conflict(f"Container {c.id} is not paused")
            await self._runc_call(c, self.runtime.resume, "unpause")
            c.state.paused = False
            self._save(c)
        self.emit(c, "unpause")

    async def _runc_call(self, c: Container, call: Callable[[str], Awaitable[None]],
                         verb: str) -> None:
        try:
            await call(c.id)
        except RuntimeError as exc:
            raise ApiError(f"Cannot {verb} container {c.id}: {exc}", 500) from None

    def update(self, ref: str, body: dict[str, Any]) -> None:
        """`POST /containers/{id}/update`: only the restart policy can change in tether."""
        c = self.get(ref)
        if not isinstance(body, dict):
            raise BadRequest("update configuration must be a JSON object")
        others = sorted(k for k, v in body.items() if k != "RestartPolicy" and v)
        if others:
            raise BadRequest(f"Cannot update container {c.id}: tether can only update the "
                             f"restart policy, not {', '.join(others)}")
        if "RestartPolicy" in body:
            policy = rules.RestartPolicy.from_api(body["RestartPolicy"])
            if c.host_config.get("AutoRemove") and policy.name != "no":
                raise BadRequest(f"Cannot update container {c.id}: Restart policy cannot be "
                                 "updated because AutoRemove is enabled for the container")
            data = c.to_json()
            data["host_config"]["RestartPolicy"] = body["RestartPolicy"]
            self._save_or_fail(c, data)
            c.host_config["RestartPolicy"] = body["RestartPolicy"]
        self.emit(c, "update")

    # ---- list ---------------------------------------------------------------------------

    def list(self, all_: bool, limit: int, filters: dict[str, list[str]]) -> list[Container]:
        """`GET /containers/json`: newest first, Docker's filters."""
        items = sorted(self._containers.values(), key=lambda c: c.created, reverse=True)
        if not all_ and limit <= 0:
            items = [c for c in items if c.state.status in ("running", "restarting")]
        items = [c for c in items if self._matches(c, filters)]
        return items[:limit] if limit > 0 else items

    def _matches(self, c: Container, filters: dict[str, list[str]]) -> bool:
        def any_of(key: str, test: Callable[[str], bool]) -> bool:
            values = filters.get(key)
            return not values or any(test(v) for v in values)

        return (any_of("id", lambda v: c.id.startswith(v))
                and any_of("name", lambda v: _name_matches(v, c.name))
                and any_of("status", lambda v: c.state.status == v)
                and any_of("ancestor", lambda v: self._is_ancestor(v, c))
                # every label filter must hold, as in Docker (compose asks project AND service)
                and all(_label_matches(v, c.config.get("Labels") or {})
                        for v in filters.get("label") or [])
                and any_of("network", lambda v: v in self._network_names(c))
                and any_of("exited", lambda v: c.state.status == "exited" and v.lstrip("-").isdigit()
                           and c.state.exit_code == int(v))
                and any_of("volume", lambda v: any(v in (mp.name or mp.source, mp.destination)
                                                   for mp in c.mount_points)))

    def _is_ancestor(self, ref: str, c: Container) -> bool:
        try:
            return self.images.resolve(ref).id == c.image_id
        except NotFound:
            return False

    # ---- recovery -----------------------------------------------------------------------

    async def load(self) -> None:
        """Reload records and reconcile them with what runc and conmon report.

        A container that still runs keeps running and gets a watcher again; one that exited while
        the daemon was away gets its exit recorded (from conmon's exit file) and its run freed.
        Nothing about one container stops the daemon: a directory without a record is a
        half-made container and is removed with its files; a record that cannot be read is set
        aside (`_set_aside`); a container that cannot be taken back or restarted is left stopped
        with the reason in State.Error (`_restore_failed`).
        """
        self.paths.containers.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.paths.containers.iterdir()):
            remove_stale_temp_files(entry)
            try:
                c = self._read_record(entry.name)
                if c.id != entry.name:
                    raise ValueError(f"the record names container {c.id!r}")
            except FileNotFoundError:
                log.warning("removing half-made container", extra={"ctx": {"dir": entry.name}})
                await self._release(entry.name)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            except Exception as exc:  # anything a damaged file can make the parser raise
                await self._set_aside(entry, exc)
                continue
            self._containers[c.id] = c
            self._names[c.name] = c.id
        for kept in self.paths.pending_records.glob("*.json"):  # of containers gone
            if kept.stem not in self._containers:
                kept.unlink()
        ordered = sorted(self._containers.values(), key=lambda c: c.created)
        for c in ordered:
            self._reload_links(c)
        for c in self._dependency_order(ordered):
            try:
                await self._reconcile(c)
            except Exception as exc:
                await self._restore_failed(c, exc)
        self.volumes.unmount_unused()
        await self._update_link_accepts()

    def _read_record(self, cid: str) -> Container:
        """A container's record: the one a full data root refused, kept under the exec root,
        when there is one (it is newer; it is written to the data root as soon as it can be),
        else the data root's."""
        pending = self.paths.pending_record(cid)
        try:
            c = Container.from_json(read_json(pending))
        except FileNotFoundError:
            return Container.from_json(read_json(self.paths.record(cid)))
        except Exception as exc:  # cut short by a crash: the data root's is the one
            log.warning("unreadable pending record ignored", extra={"ctx": {"id": cid,
                                                                           "error": str(exc)}})
            pending.unlink(missing_ok=True)
            return Container.from_json(read_json(self.paths.record(cid)))
        self._mark_unsaved(cid)
        return c

    async def _set_aside(self, entry: Path, exc: Exception) -> None:
        """A record that cannot be read: the container cannot be managed without it, so what
        still runs of it is stopped and freed, and its directory (record, log, files) is moved
        whole to `<data-root>/corrupt/containers/` for a person to look at, never deleted."""
        await self._release(entry.name)
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
        message = self._error_text(exc)
        log.error("container could not be restored", extra={"ctx": {"id": c.id,
                                                                    "error": message}})
        run = self._run(c.id)
        try:
            if run.watcher is not None and not run.watcher.done():  # started, then failed
                await self._signal(c, signal.SIGKILL)
                await self.wait_released(c.id)
            elif self.runtime.status(c.id) in ("created", "running", "paused"):
                await self.runtime.kill(c.id, signal.SIGKILL)
                if self.runtime.status(c.id) == "paused":
                    await self.runtime.resume(c.id)
                code = await self.runtime.wait(c.id)
                self.emit(c, "die", exitCode=str(code))
                await self._release(c)
                c.state = State(status="exited", exit_code=code, started_at=c.state.started_at,
                                finished_at=now_rfc3339())
        except Exception:
            log.exception("stopping an unrestorable container failed", extra={"ctx": {
                "id": c.id}})
        c.state.error = message
        self._save(c)

    def _reload_links(self, parent: Container) -> None:
        """Links are re-made from HostConfig.Links by name, as dockerd does at start: a child
        that is gone ends that container's remaining links (logged). On a user network links
        are only names for the resolver, kept in the endpoint."""
        if self._on_user_network(parent):
            return
        children = []
        for value in parent.host_config.get("Links") or []:
            try:
                name, alias = linkrules.parse_link(value)
                children.append((self.get(name), alias))
            except (linkrules.LinkError, ApiError):  # gone, or an ambiguous name
                log.warning("failed to register link for container",
                            extra={"ctx": {"id": parent.id, "link": value}})
                break
        self._register_links(parent, children)

    def _dependency_order(self, containers: list[Container]) -> list[Container]:
        """Linked containers before the containers that link to them."""
        done: dict[str, Container] = {}
        seen: set[str] = set()

        def visit(c: Container) -> None:
            if c.id in seen:
                return
            seen.add(c.id)
            for edge in self.links.children(c.id):
                child = self._containers.get(edge.child_id)
                if child is not None:
                    visit(child)
            done[c.id] = c
        for c in containers:
            visit(c)
        return list(done.values())

    async def _reconcile(self, c: Container) -> None:
        run = self._run(c.id)
        status = self.runtime.status(c.id)
        if c.state.status in ("running", "restarting") and status in ("running", "paused"):
            # runc's word on the freezer wins: a pause or unpause may have been cut short
            paused = status == "paused"
            if (c.state.status, c.state.paused) != ("running", paused):
                c.state.status, c.state.paused = "running", paused
                self._save(c)
            await self.network.restore(c.id, c.name, c.network)
            self.container_mounts.reacquire(c)
            for entry in c.networks.values():
                await self.network.restore(c.id, c.name, entry.get("State") or {})
            await self._serve_dns(c)
            run.exited = asyncio.Event()
            run.watcher = asyncio.create_task(self._watch(c))
            return
        if c.state.status == "running":
            code = self.runtime.exit_code(c.id)
            await self._on_exit(c, 255 if code is None else code)
            return
        if c.state.status == "removing":
            await self.remove(c.id, force=True)
            return
        if status is not None or mounts.is_mounted(self.paths.rootfs(c.id)) \
                or self.paths.netns(c.id).exists():
            await self._release(c)
        if c.state.status == "restarting":
            c.state.status = "exited"
            self._save(c)
        policy = rules.RestartPolicy.from_api(c.host_config.get("RestartPolicy"))
        if c.has_been_started and (policy.name == "always" or
                                   (policy.name == "unless-stopped" and not c.stopped_by_user)):
            async with run.lock:
                await self._start_locked(c, run)

    async def shutdown(self) -> None:
        """Stop watching (containers keep running under conmon); used when the daemon exits.
        Records a full disk refused get a last try (else the next daemon reads the copies kept
        under the exec root)."""
        if self._flusher is not None:
            self._flusher.cancel()
        self._write_unsaved()
        for run in self._runs.values():
            for task in (run.watcher, run.restarter):
                if task:
                    task.cancel()


def _env_of_links(linked: list[tuple[Edge, Container]]) -> list[str]:
    env: list[str] = []
    for edge, child in linked:
        env += linkrules.link_env(edge.name, child.network["IPAddress"],
                                  (child.config.get("ExposedPorts") or {}).keys(),
                                  child.config.get("Env") or [])
    return env


def _hosts_of_links(linked: list[tuple[Edge, Container]]) -> list[tuple[str, str]]:
    return [linkrules.hosts_line(edge.alias, child.network["IPAddress"], child.config["Hostname"],
                                 child.name.lstrip("/")) for edge, child in linked]


def _make_working_dir(rootfs: Path, cwd: str) -> None:
    """Create the container's working directory as dockerd's SetupWorkingDirectory does: the
    path resolved inside the root by fds (rootfd: a symlink cannot point the mkdir at the host), then
    its missing directories made 0755. A file in the way is refused in dockerd's words, which
    name the container's path only: an OSError's text would carry the host path of the rootfs."""
    try:
        with rootfd.Root.open(rootfs) as root:
            os.close(root.makedirs(root.resolve(cwd), 0o755))  # links followed, then mkdir -p
    except (FileExistsError, NotADirectoryError):
        raise BadRequest(f"Cannot mkdir: {cwd} is not a directory") from None
    except OSError as exc:
        raise BadRequest(f"Cannot mkdir: {cwd}: {exc.strerror}") from None


def _rewrite_in_place(path: Path, text: str) -> None:
    """Replace a file's content keeping its inode: a running container sees the file through a
    bind mount, which a rename would leave pointing at the old one. A failed write (a full
    disk) raises an OSError naming the file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.truncate()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _name_matches(pattern: str, name: str) -> bool:
    try:
        regex = re.compile(pattern)
    except re.error:
        return False
    return bool(regex.search(name) or regex.search(name.lstrip("/")))


def _label_matches(spec_: str, labels: dict[str, str]) -> bool:
    key, sep, value = spec_.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value

