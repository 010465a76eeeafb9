"""What a container's process is started with: its OCI config (command, environment, user,
mounts, namespaces, security) and its working directory, made inside its root at each start."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tether.rules import config as rules
from tether.rules import resources as resource_rules
from tether.engine import mountspec, securityopt
from tether.engine.records import Container
from tether.rules.errors import ApiError, BadRequest
from tether.runtime import cgroups, rootfd, seccomp_host, spec
from tether.runtime.seccomp import ProfileError


def security_settings(c: Container, daemon: securityopt.DaemonSecurity) -> dict[str, Any]:
    """build_spec's security settings for this container: seccomp (its SecurityOpt over the
    daemon's defaults, the profile translated for its capabilities), no-new-privileges, and
    the masked and read-only paths stored at create."""
    options = securityopt.parse(c.host_config.get("SecurityOpt"))
    privileged = bool(c.host_config.get("Privileged"))
    filtered, profile = securityopt.seccomp_profile(options, privileged, daemon.seccomp_profile)
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
            "no_new_privileges": daemon.no_new_privileges if nnp is None else nnp,
            "masked_paths": c.host_config.get("MaskedPaths"),
            "readonly_paths": c.host_config.get("ReadonlyPaths")}


def oci_config(c: Container, rootfs: Path, netns_path: Path, cwd: str,
               user: tuple[int, int, list[int], str], mounts: list[dict[str, Any]],
               security: dict[str, Any]) -> dict[str, Any]:
    """The OCI config of one start: `user` is (uid, gid, groups, home) as resolved in the
    root, the link variables those the start computed (`c.started_link_env`)."""
    uid, gid, groups, home = user
    env = rules.process_env(c.config, c.config["Hostname"], c.tty, c.started_link_env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    host_network = c.network_mode == "host"
    oci = spec.build_spec(
        rootfs=str(rootfs), args=[c.path, *c.args], env=env, cwd=cwd, uid=uid, gid=gid,
        additional_gids=groups, tty=c.tty, hostname=c.config["Hostname"],
        netns_path=None if host_network else str(netns_path),
        mounts=mounts,
        cgroups_path=resource_rules.cgroups_path(c.id, c.host_config.get("CgroupParent")),
        resources=oci_resources(c.host_config),
        readonly_rootfs=bool(c.host_config.get("ReadonlyRootfs")),
        cap_add=c.host_config.get("CapAdd") or [], cap_drop=c.host_config.get("CapDrop") or [],
        privileged=bool(c.host_config.get("Privileged")),
        rootfs_propagation=mountspec.rootfs_propagation(c.mount_points), **security)
    if host_network:  # share the daemon's namespace, whose net.* sysctls are not ours
        linux = oci["linux"]
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
        linux["sysctl"] = {k: v for k, v in linux.get("sysctl", {}).items()
                           if not k.startswith("net.")}
    return oci


def oci_resources(host_config: dict[str, Any]) -> dict[str, Any]:
    """The container's limits as OCI resources; a block device that cannot be found fails the
    start in dockerd's words (dockerd too looks the devices up at each start, not at create)."""
    try:
        return resource_rules.oci_resources(host_config, cgroups.device_number)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def make_working_dir(rootfs: Path, cwd: str) -> None:
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


