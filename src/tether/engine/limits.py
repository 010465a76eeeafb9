"""A container's resource limits at the engine: what this host's kernel can limit (the create
check is spec/create.py's `check_resources`), and `docker update` (the record, and the cgroup of
a running container). The rules are tether.rules.resources, over the API-shaped Resources
(`Resources.to_api`); the cgroup files tether.runtime.cgroups."""
from __future__ import annotations

import functools
from typing import Any, Callable

from tether.rules import resources as rules
from tether.runtime import cgroups
from tether.spec.types import Resources


@functools.cache
def host_facts() -> rules.HostFacts:
    """Read once: the controllers a host mounts do not change while the daemon runs."""
    return cgroups.host_facts()


def updated(cid: str, resources: Resources, body: dict[str, Any]
            ) -> tuple[Resources, list[str]]:
    """The Resources after `docker update` with `body`, and dockerd's Warnings."""
    request = {k: body[k] for k in rules.UPDATABLE if k in body}
    for key in ("CpuPercent", "IOMaximumBandwidth", "IOMaximumIOps"):
        if body.get(key):
            request[key] = body[key]
    warnings = rules.verify(request, host_facts(), update=True)
    merged = rules.merge_update(resources.to_api(omit=False), request, cid)
    rules.verify(dict(merged), host_facts(), update=True)  # the combination, e.g. swap < memory
    return Resources.from_api(merged), warnings


def write_live(paths: dict[str, str], resources: Resources, pids_reset: bool) -> None:
    """Write the limits into a running container's cgroup (`paths` from runc's state)."""
    res = rules.oci_resources(resources.to_api(omit=False), cgroups.device_number)
    res.pop("blockIO", None)  # dockerd's update changes the weight only; it was checked above
    if resources.blkio_weight:
        res["blockIO"] = {"weight": resources.blkio_weight}
    memory = res.get("memory", {})
    for key in ("kernel", "kernelTCP", "swappiness", "disableOOMKiller"):  # not updatable
        memory.pop(key, None)
    cgroups.apply(paths, res, pids_unlimited=pids_reset)


def write_runc_ignored(paths: Callable[[], dict[str, str]], resources: Resources) -> None:
    """The limits runc 1.1 takes from config.json and does not write (kernelTCP; Docker 20.10's
    runc still did), written into the created container's cgroup before its process starts.
    `paths` (from runc's state file) is read only when there is such a limit to write."""
    if resources.kernel_memory_tcp:
        cgroups.apply(paths(), {"memory": {"kernelTCP": resources.kernel_memory_tcp}})
