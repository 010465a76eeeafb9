"""What a container's process is started with: the parts of its OCI config the engine resolves
at each start (environment, user, mounts, netns, security decisions), handed with the typed spec
to the one compiler (runtime/oci.py), and its working directory, made inside its root."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tether.rules import config as rules
from tether.engine import mountspec, securityopt
from tether.engine.records import Container
from tether.rules.errors import ApiError, BadRequest
from tether.runtime import oci, rootfd, seccomp_host
from tether.runtime.seccomp import ProfileError


def security_settings(c: Container, daemon: securityopt.DaemonSecurity) -> dict[str, Any]:
    """The compiler's security parts for this container: seccomp (its SecurityOpt over the
    daemon's defaults, the profile translated for its capabilities) and no-new-privileges."""
    hc = c.host_config
    options = securityopt.parse(hc.security_opt)
    filtered, profile = securityopt.seccomp_profile(options, hc.privileged,
                                                    daemon.seccomp_profile)
    section = None
    if filtered:
        caps = oci.capabilities(hc.cap_add or [], hc.cap_drop or [], hc.privileged)
        try:
            section = seccomp_host.oci_section(profile, caps)
        except ProfileError as exc:
            raise ApiError(str(exc)) from None  # a 500, as dockerd
    nnp = options.no_new_privileges
    return {"seccomp": section,
            "no_new_privileges": daemon.no_new_privileges if nnp is None else nnp}


def endpoints_during_create(c: Container) -> bool:
    """May a start make the container's network endpoints while `runc create` runs? Not when
    the user sets net.* sysctls: runc writes them at create, and one of an interface
    (net.ipv4.conf.eth0.*) needs that interface in the namespace first. Nor with volumes: the
    config's mounts give their `mount` events, which follow the network's `connect` in dockerd."""
    return not any(key.startswith("net.") for key in c.host_config.sysctls or {}) \
        and not any(mp.type == "volume" for mp in c.mount_points)


def oci_config(c: Container, rootfs: Path, netns_path: Path, cwd: str,
               user: tuple[int, int, list[int], str], mounts: list[dict[str, Any]],
               security: dict[str, Any], process: dict[str, Any],
               joined: dict[str, str] | None = None, shm_path: str = "") -> dict[str, Any]:
    """The OCI config of one start: `user` is (uid, gid, groups, home) as resolved in the
    root, the link variables those the start computed (`c.started_link_env`), `process` the
    process options' parts (engine/process_config.parts), `joined` the namespaces taken from
    other containers and `shm_path` a shared /dev/shm (engine/shared_ns.py)."""
    uid, gid, groups, home = user
    env = rules.process_env(c.config.env, c.config.hostname, c.tty, c.started_link_env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")
    return oci.compile_spec(c.config, c.host_config, oci.Parts(
        rootfs=str(rootfs), args=[c.path, *c.args], env=env, cwd=cwd, uid=uid, gid=gid,
        additional_gids=groups, netns_path=str(netns_path), mounts=mounts, joined=joined or {},
        shm_path=shm_path,
        cgroups_path=f"/tether/{c.id}",
        rootfs_propagation=mountspec.rootfs_propagation(c.mount_points), **security, **process))
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


