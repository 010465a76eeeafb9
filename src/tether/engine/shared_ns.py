"""Namespaces joined from another container, as Docker's `container:<name|id>` modes
(NetworkMode, IpcMode, PidMode): the checks dockerd makes at create, and, at each start, the
namespace files of the donor's running process (`/proc/<pid>/ns/<type>`) that the compiler
(runtime/oci.namespaces) writes as paths. The donor is looked up again at every start, as
dockerd does: a member restarted after its donor was removed fails in dockerd's words.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.engine.volume_rules import parse_mount_options
from tether.rules import container_mode, process_options
from tether.rules.errors import BadRequest, Conflict, NotFound
from tether.runtime import mounts
from tether.spec.types import Config, HostConfig

# runconfig's errors for a container-type network mode combined with its own network settings
_NETWORK_CONFLICTS = (
    (lambda c, hc: bool(c.hostname), "conflicting options: hostname and the network mode"),
    (lambda c, hc: bool(hc.dns), "conflicting options: dns and the network mode"),
    (lambda c, hc: bool(hc.extra_hosts),
     "conflicting options: custom host-to-IP mapping and the network mode"),
    (lambda c, hc: bool(c.mac_address), "conflicting options: mac-address and the network mode"),
    (lambda c, hc: bool(hc.port_bindings) or hc.publish_all_ports,
     "conflicting options: port publishing and the container type network mode"),
    (lambda c, hc: bool(c.exposed_ports),
     "conflicting options: port exposing and the container type network mode"),
)


def check_at_create(config: Config, host_config: HostConfig,
                    get: Callable[[str], Container]) -> None:
    """dockerd's create-time checks of `container:` modes, after spec/create.validate's (a
    hostname beside the host's UTS namespace is refused there): a network donor's own settings
    conflict with the member's (the donor itself is looked up at start only, as dockerd); IPC
    and PID donors must exist ("No such container", a 400)."""
    if host_config.network_mode == container_mode.PREFIX:
        raise BadRequest("Invalid network mode: invalid container format container:<name|id>")
    if container_mode.donor(host_config.network_mode):
        for applies, text in _NETWORK_CONFLICTS:
            if applies(config, host_config):
                raise BadRequest(text)
    for mode in (host_config.ipc_mode, host_config.pid_mode):
        if container_mode.donor(mode):
            try:
                get(container_mode.donor(mode))
            except NotFound as exc:  # a 400 here in dockerd (a 404 would make the CLI pull)
                raise BadRequest(exc.message) from None


def namespace_paths(c: Container, get: Callable[[str], Container]) -> dict[str, str]:
    """OCI namespace type -> the donor's namespace file, for each joined mode of this start,
    with dockerd's errors for a donor that is not running or whose IPC is not shareable. A
    network member takes its donor's hostname and its full ID in NetworkMode, as dockerd."""
    hc = c.host_config
    out: dict[str, str] = {}
    ref = container_mode.donor(hc.network_mode)
    if ref:
        donor = get(ref)
        if donor.id == c.id:
            raise BadRequest("cannot join own network")
        if not donor.state.running:
            raise Conflict(f"cannot join network of a non running container: {donor.id}")
        hc.network_mode = container_mode.PREFIX + donor.id
        c.config.hostname = donor.config.hostname
        c.config.domainname = donor.config.domainname
        out["network"] = _ns(donor, "net")
    ref = container_mode.donor(hc.ipc_mode)
    if ref:
        donor = get(ref)
        prefix = f"can't join IPC of container {donor.id}: "
        if not donor.state.running:
            raise Conflict(f"{prefix}container {donor.id} is not running")
        if donor.host_config.ipc_mode != "shareable":
            raise BadRequest(f"{prefix}non-shareable IPC (hint: use IpcMode:shareable for the "
                             "donor container)")
        out["ipc"] = _ns(donor, "ipc")
    ref = container_mode.donor(hc.pid_mode)
    if ref:
        donor = get(ref)
        if not donor.state.running:
            raise Conflict(f"container {donor.id} is not running")
        out["pid"] = _ns(donor, "pid")
    return out


def files_owner(c: Container) -> str:
    """Whose hostname, hosts and resolv.conf the container binds: its network donor's (full
    ID, settled at its first start) when it has one, else its own."""
    ref = container_mode.donor(c.host_config.network_mode)
    return ref if re.fullmatch(r"[0-9a-f]{64}", ref) else c.id


def _ns(donor: Container, kind: str) -> str:
    return f"/proc/{donor.state.pid}/ns/{kind}"


def shm_source(c: Container, paths: Paths, get: Callable[[str], Container]) -> str:
    """The host-side /dev/shm of this start's IPC namespace when it is shared, as dockerd's
    ShmPath: a shareable container's own tmpfs (`mount_shm`), a member's donor's (checked
    running by `namespace_paths` first). "" for a private /dev/shm, the common case, which
    costs no system call."""
    if c.host_config.ipc_mode == "shareable":
        return str(shm_path(paths, c.id))
    ref = container_mode.donor(c.host_config.ipc_mode)
    return str(shm_path(paths, get(ref).id)) if ref else ""


def mount_shm(c: Container, paths: Paths) -> None:
    """Mount a shareable container's /dev/shm tmpfs (ShmSize, Docker's options) under its
    directory on the host, where no container path is followed; unmounted when the run ends
    (`RunResources.release`), as Docker's."""
    path = shm_path(paths, c.id)
    path.mkdir(mode=0o700, exist_ok=True)
    if not mounts.is_mounted(path):
        flags, data = parse_mount_options(
            ",".join(process_options.shm_options(c.host_config.shm_size)))
        mounts.mount("shm", path, "tmpfs", flags, data)


def shm_path(paths: Paths, cid: str) -> Path:
    """Where a shareable container's /dev/shm tmpfs is mounted on the host."""
    return paths.container(cid) / "shm"
