"""A container's resource limits at the engine: checked at create against what this host's
kernel can limit, and changed by `docker update` (the record, and the cgroup of a running
container). The rules are tether.rules.resources; the cgroup files tether.runtime.cgroups."""
from __future__ import annotations

import functools
from typing import Any

from tether.rules import resources as rules
from tether.runtime import cgroups


@functools.cache
def host_facts() -> rules.HostFacts:
    """Read once: the controllers a host mounts do not change while the daemon runs."""
    return cgroups.host_facts()


def check_create(host_config: dict[str, Any]) -> list[str]:
    """dockerd's defaults and checks of a new container's limits (in place); its Warnings."""
    rules.adapt(host_config)
    return rules.verify(host_config, host_facts())  # block devices are looked up at start


def updated(cid: str, host_config: dict[str, Any], body: dict[str, Any]
            ) -> tuple[dict[str, Any], list[str]]:
    """The HostConfig after `docker update` with `body`, and dockerd's Warnings."""
    request = {k: body[k] for k in rules.UPDATABLE if k in body}
    for key in ("CpuPercent", "IOMaximumBandwidth", "IOMaximumIOps"):
        if body.get(key):
            request[key] = body[key]
    warnings = rules.verify(request, host_facts(), update=True)
    merged = rules.merge_update(host_config, request, cid)
    rules.verify(dict(merged), host_facts(), update=True)  # the combination, e.g. swap < memory
    return merged, warnings


def write_live(paths: dict[str, str], host_config: dict[str, Any], pids_reset: bool) -> None:
    """Write the limits into a running container's cgroup (`paths` from runc's state)."""
    res = rules.oci_resources(host_config, cgroups.device_number)
    res.pop("blockIO", None)  # dockerd's update changes the weight only; it was checked above
    if host_config.get("BlkioWeight"):
        res["blockIO"] = {"weight": host_config["BlkioWeight"]}
    memory = res.get("memory", {})
    for key in ("kernel", "kernelTCP", "swappiness", "disableOOMKiller"):  # not updatable
        memory.pop(key, None)
    cgroups.apply(paths, res, pids_unlimited=pids_reset)


def write_runc_ignored(paths: dict[str, str], host_config: dict[str, Any]) -> None:
    """The limits runc 1.1 takes from config.json and does not write (kernelTCP; Docker 20.10's
    runc still did), written into the created container's cgroup before its process starts."""
    if host_config.get("KernelMemoryTCP"):
        cgroups.apply(paths, {"memory": {"kernelTCP": host_config["KernelMemoryTCP"]}})
