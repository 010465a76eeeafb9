"""A start's process options laid onto its OCI config: ulimits, OOM score, sysctls,
`--group-add`, /dev/shm's size, host devices and device cgroup rules, and `--init`. The rules
live in tether.rules.process_options; this module only gathers what they need from the record,
the container's root (its /etc/group, read by fds inside it) and the host (device nodes, the
init binary)."""
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


def apply(oci: dict[str, Any], c: Container, rootfs: Path,
          defaults: rules.DaemonDefaults) -> None:
    """Add this container's process options to `oci` (built by run_config.oci_config)."""
    hc = c.host_config
    process, linux = oci["process"], oci["linux"]
    limits = rules.rlimits(hc.get("Ulimits"), defaults.ulimits)
    if limits:
        process["rlimits"] = limits
    process["oomScoreAdj"] = hc.get("OomScoreAdj") or 0
    linux.setdefault("sysctl", {}).update(rules.sysctls(hc))
    ids = process["user"]
    ids["additionalGids"] = list(dict.fromkeys(
        [*ids["additionalGids"], *user.additional_groups(str(rootfs), hc.get("GroupAdd"))]))
    _shm(oci, hc)
    nodes, node_rules = devices.host_devices(hc.get("Devices"))
    linux["devices"] = [*linux.get("devices", []), *nodes]
    linux["resources"]["devices"] += [*node_rules,
                                      *rules.device_cgroup_rules(hc.get("DeviceCgroupRules"))]
    if rules.wants_init(hc, defaults.init):
        process["args"] = rules.init_args(process["args"])
        oci["mounts"].append(rules.init_mount(init_binary(defaults)))


def _shm(oci: dict[str, Any], hc: dict[str, Any]) -> None:
    """IPC and /dev/shm as dockerd sets them up: the private /dev/shm gets the container's
    ShmSize; `--ipc none` has none; `--ipc host` shares the host's IPC namespace and binds its
    /dev/shm (ShmSize does not apply there, as in Docker)."""
    mode = hc.get("IpcMode")
    if mode == "host":
        linux = oci["linux"]
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "ipc"]
    mounts = oci["mounts"]
    index = next((i for i, m in enumerate(mounts)
                  if m["destination"] == "/dev/shm" and m["source"] == "shm"), None)
    if index is None:  # the container mounts its own /dev/shm (--tmpfs /dev/shm, a volume)
        return
    if mode == "none":
        del mounts[index]
    elif mode == "host":
        mounts[index] = rules.host_shm_mount()
    else:
        mounts[index] = {**mounts[index], "options": rules.shm_options(hc.get("ShmSize"))}
