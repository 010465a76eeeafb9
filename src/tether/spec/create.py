"""dockerd's create-time checks of a typed spec and the defaults it stores, with its texts.

`validate` is daemon/container.go's verifyContainerSettings in its order (the cheap checks of
tether.rules.config, port bindings included: dockerd refuses a bad binding at create, so no
record is left), plus the checks of the fields dockerd resolves at create (runtime, cgroup
namespace mode, restart policy with AutoRemove, ShmSize and OomScoreAdj). `log_config` is
dockerd's mergeAndVerifyLogConfig, which it runs once the image is found. `apply_defaults` fills
what dockerd fills before it stores HostConfig (json-file, runc, a 64 MiB /dev/shm, the private
IPC namespace, the host cgroup namespace of a cgroup v1 host, OomKillDisable false, MemorySwap
twice Memory), so that
inspect shows Docker's values and the compiler reads a complete spec. `check_resources` is
dockerd's verifyPlatformContainerResources over the limits (tether.rules.resources, on the
API-shaped Resources: its checks, texts and Warnings are written over Docker's names), given what
this host's kernel can limit. Pure.
"""
from __future__ import annotations

from tether.rules import config as rules
from tether.rules import log_options, process_options
from tether.rules import resources as resource_rules
from tether.rules.errors import BadRequest
from tether.spec.types import Config, HostConfig, Resources

DEFAULT_LOG_DRIVER = "json-file"
DEFAULT_RUNTIME = "runc"
DEFAULT_SHM_SIZE = process_options.DEFAULT_SHM_SIZE
DEFAULT_IPC_MODE = "private"
# this engine runs containers in the host's cgroup namespace (cgroup v1 hosts: dockerd's default)
DEFAULT_CGROUPNS_MODE = "host"


def validate(config: Config, host_config: HostConfig,
             facts: resource_rules.HostFacts) -> None:
    """dockerd's create-time refusals, its texts and statuses (`facts`: what this host's kernel
    can limit, for the real-time checks)."""
    if host_config.uts_mode == "host" and config.hostname:  # checked as the body is decoded
        raise BadRequest("conflicting options: hostname and the UTS mode")
    resource_rules.check_decoded(host_config.resources.to_api(), facts)  # decoded, too
    rules.validate_create(config.to_api(omit=False), host_config.to_api(omit=False))
    policy = rules.RestartPolicy.from_api(host_config.restart_policy.to_api())
    if host_config.auto_remove and policy.name != "no":
        raise BadRequest("can't create 'AutoRemove' container with restart policy")
    if host_config.cgroupns_mode not in ("", "host", "private"):
        raise BadRequest(f"invalid cgroup namespace mode: {host_config.cgroupns_mode}")
    if host_config.runtime not in ("", DEFAULT_RUNTIME):
        raise BadRequest(f"Unknown runtime specified {host_config.runtime}")
    process_options.validate_create(host_config.shm_size, host_config.oom_score_adj)


def log_config(kind: str, config: dict[str, str] | None,
               default: dict) -> tuple[str, dict[str, str]]:
    """The LogConfig a container is created with: the request's merged with the daemon's
    `--log-driver`/`--log-opt` (`default`, {"Type", "Config"}), checked with dockerd's texts."""
    kind, config = log_options.settle(kind, config, default.get("Type") or DEFAULT_LOG_DRIVER,
                                      default.get("Config"))
    log_options.validate(kind, config)
    return kind, config


def check_resources(host_config: HostConfig, facts: resource_rules.HostFacts) -> list[str]:
    """dockerd's checks of the limits at create, its Warnings returned; what this kernel cannot
    limit is discarded from `host_config` as dockerd discards it (its defaults come after, in
    `apply_defaults`, as dockerd's adaptContainerSettings after its checks). Maximum IO and
    the real-time limits were checked by `validate`, as dockerd checks them while it decodes
    the body."""
    shaped = host_config.resources.to_api(omit=False)
    warnings = resource_rules.verify(shaped, facts)
    host_config.resources = Resources.from_api(shaped)
    return warnings


def apply_defaults(host_config: HostConfig) -> None:
    """What dockerd stores for what the client left empty."""
    log = host_config.log_config
    log.type = log.type or DEFAULT_LOG_DRIVER
    log.config = log.config if log.config is not None else {}
    host_config.runtime = host_config.runtime or DEFAULT_RUNTIME
    host_config.shm_size = host_config.shm_size or DEFAULT_SHM_SIZE
    host_config.ipc_mode = host_config.ipc_mode or DEFAULT_IPC_MODE
    host_config.cgroupns_mode = host_config.cgroupns_mode or DEFAULT_CGROUPNS_MODE
    res = host_config.resources
    if res.memory_swappiness == -1:  # the docker CLI's "not set"
        res.memory_swappiness = None
    if (res.pids_limit or 0) <= 0:  # no limit, which dockerd stores as null
        res.pids_limit = None
    if res.oom_kill_disable is None:
        res.oom_kill_disable = False
    if res.memory > 0 and not res.memory_swap:  # swap as much again as the memory
        res.memory_swap = 2 * res.memory
    if not host_config.restart_policy.name:
        host_config.restart_policy.name = "no"
