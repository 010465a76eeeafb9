"""The process options' parts of a start that need more than the spec: Ulimits merged with the
daemon's `--default-ulimit`s, `--group-add` names found in the container's /etc/group (read by
fds inside its root), host device nodes (`--device`) and the init binary (`--init`). They are
handed to the compiler (runtime/oci.py, `Parts`), which writes every OCI field; the rules live
in tether.rules.process_options."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tether.engine.records import Container
from tether.rules import process_options as rules
from tether.rules.errors import ApiError
from tether.runtime import devices, user


def init_binary(defaults: rules.DaemonDefaults) -> str:
    """The init bound into containers: `--init-path`, else dockerd's `docker-init` on PATH,
    else Debian's static tini (the same program dockerd ships as docker-init)."""
    path = defaults.init_path or shutil.which(rules.DEFAULT_INIT_BINARY) or shutil.which(
        "tini-static")
    if not path:
        raise ApiError(f'exec: "{rules.DEFAULT_INIT_BINARY}": executable file not found in $PATH')
    return path


def parts(c: Container, rootfs: Path, defaults: rules.DaemonDefaults) -> dict[str, Any]:
    """The `oci.Parts` fields of this container's process options."""
    hc = c.host_config
    nodes, allow = devices.host_devices(hc.resources.devices)
    return {
        "rlimits": rules.rlimits(hc.resources.ulimits, defaults.ulimits),
        "group_add_gids": user.additional_groups(str(rootfs), hc.group_add),
        "init_path": init_binary(defaults) if rules.wants_init(
            hc.init, hc.pid_mode, defaults.init) else "",
        "devices": nodes,
        "device_allow": allow,
    }
