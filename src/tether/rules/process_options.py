"""The process options of `docker run` as dockerd 20.10 reads them, compiled to OCI fragments.

Ulimits, ShmSize, Sysctls, OomScoreAdj, Init, DeviceCgroupRules and MacAddress, with dockerd's
texts and the moment it says them: ShmSize and OomScoreAdj are refused at create (400, dockerd's
verifyPlatformContainerSettings); a sysctl, ulimit or device rule the kernel or runc cannot take
fails the start (500), because dockerd only learns of it from runc. Pure functions over the API's
values, so each rule is unit-tested without a container; the engine applies what they return.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tether.rules.errors import ApiError, BadRequest, runtime_create_error

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_IN_CONTAINER = "/sbin/docker-init"
DEFAULT_INIT_BINARY = "docker-init"  # dockerd's name; Debian's tini package provides tini-static

# sysctls that live in the IPC namespace (runc's validator's list and fs.mqueue.*)
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"})

# go-units' ulimit names (ParseUlimit); the API's Name is turned into RLIMIT_<NAME> as dockerd does
ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")

DEVICE_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True)
class DaemonDefaults:
    """What tetherd's flags give containers that do not say: `--default-ulimit` (name ->
    {Name, Soft, Hard}), `--init`, `--init-path` and the `--log-driver`/`--log-opt` default."""

    ulimits: dict[str, dict[str, Any]] = field(default_factory=dict)
    init: bool = False
    init_path: str = ""
    log_config: dict[str, Any] = field(
        default_factory=lambda: {"Type": "json-file", "Config": {}})


def parse_ulimit(text: str) -> dict[str, Any]:
    """`name=soft[:hard]` as go-units ParseUlimit reads it (the CLI's `--ulimit` and the
    daemon's `--default-ulimit`), with its texts; a value without a hard limit uses soft for both."""
    name, sep, values = text.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = values.partition(":")
    soft = _go_int64(soft_text, "soft")
    hard = _go_int64(hard_text, "hard") if colon else soft
    if colon and ":" in hard_text:
        raise ValueError(f"too many limit value arguments - {values}, can only have up to two, "
                         "`soft[:hard]`")
    if soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: "
                         f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def _go_int64(text: str, which: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f'invalid ulimit {which} value {text}: strconv.ParseInt: parsing '
                         f'"{text}": invalid syntax')
    return int(text)


def validate_create(shm_size: int, oom_score_adj: int) -> None:
    """dockerd's create-time refusals of these options (400), in its order
    (verifyPlatformContainerSettings; called from spec/create.validate)."""
    if shm_size < 0:
        raise BadRequest("SHM size can not be less than 0")
    if not -1000 <= oom_score_adj <= 1000:
        raise BadRequest(f"Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]")


def rlimits(ulimits: list[dict[str, Any]] | None,
            defaults: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """OCI `process.rlimits`: the container's ulimits, then the daemon's defaults for names the
    container does not set (dockerd's merge), each as RLIMIT_<NAME>. Values are given to runc
    as they are: runc refuses an unknown name or soft > hard at start, as under dockerd."""
    given = list(ulimits or [])
    names = {u.get("Name") for u in given}
    merged = given + [u for name, u in defaults.items() if name not in names]
    return [{"type": "RLIMIT_" + (u.get("Name") or "").upper(),
             "soft": _uint64(u.get("Soft") or 0), "hard": _uint64(u.get("Hard") or 0)}
            for u in merged]


def _uint64(value: int) -> int:
    """Go's uint64(int64) conversion: -1 (unlimited in a ulimit) becomes RLIM_INFINITY."""
    return value & 0xFFFFFFFFFFFFFFFF


def shm_options(size: int | None) -> list[str]:
    """The options of the private /dev/shm tmpfs: Docker's, with the container's size."""
    return ["nosuid", "noexec", "nodev", "mode=1777", f"size={size or DEFAULT_SHM_SIZE}"]


def host_shm_mount() -> dict[str, Any]:
    """`--ipc host`'s /dev/shm: the host's, bound (dockerd's ShmPath of a host-IPC container)."""
    return {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
            "options": ["rbind", "rprivate"]}


def sysctls(given: dict[str, str] | None, ipc_mode: str) -> dict[str, str]:
    """The container's own sysctls for OCI `linux.sysctl`. runc checks that each is namespaced
    and that its namespace is the container's own; an IPC sysctl with `--ipc host` is refused
    here first, in runc's words (a start failure, 500, as dockerd reports runc's)."""
    given = dict(given or {})
    if ipc_mode == "host":
        for key in given:
            if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
                raise ApiError(runtime_create_error(
                    f'runc create failed: sysctl "{key}" is not allowed in the hosts ipc '
                    "namespace"))
    return given


def wants_init(init: bool | None, pid_mode: str, daemon_init: bool) -> bool:
    """dockerd's rule: the container's Init when set, else the daemon's `--init`; never with the
    host's PID namespace (there PID 1 is the host's init)."""
    if pid_mode == "host":
        return False
    return daemon_init if init is None else bool(init)


def init_args(args: list[str]) -> list[str]:
    """The process args under the init, as dockerd gives them to tini."""
    return [INIT_IN_CONTAINER, "--", *args]


def init_mount(path: str) -> dict[str, Any]:
    """The init binary bound read-only at /sbin/docker-init."""
    return {"destination": INIT_IN_CONTAINER, "type": "bind", "source": path,
            "options": ["bind", "ro"]}


def device_cgroup_rules(rules: list[str] | None) -> list[dict[str, Any]]:
    """OCI device cgroup entries of `--device-cgroup-rule`s (`c 1:3 rwm`, `a *:* m`); a rule
    that does not parse fails the start with dockerd's text (it checks them only there)."""
    result = []
    for rule in rules or []:
        match = DEVICE_RULE.match(rule)
        if match is None:
            raise ApiError(f"invalid device cgroup rule format: '{rule}'")
        kind, major, minor, access = match.groups()
        entry: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major != "*":
            entry["major"] = int(major)
        if minor != "*":
            entry["minor"] = int(minor)
        result.append(entry)
    return result


def valid_mac(mac: str) -> bool:
    """A 48-bit MAC in the colon form the docker CLI and tether's bridge accept."""
    return bool(_MAC.match(mac))


def mac_error(mac: str) -> ApiError:
    """dockerd's start failure for a MacAddress Go's net.ParseMAC refuses (500)."""
    return ApiError(f"address {mac}: invalid MAC address")


def endpoint_mac(mode: str, macs: dict[str, str]) -> str:
    """The MAC the API 1.44 clients send in the endpoint settings of the container's own
    network (NetworkMode; `default` is the bridge), given as network name -> MacAddress: kept
    as Config.MacAddress, which is what Docker 20.10 reads, so both ways of asking give the
    same endpoint. A MAC for another network's endpoint would be dropped: refused by name."""
    names = {mode, "bridge", "default"} if mode in ("default", "bridge") else {mode}
    own = [mac for name, mac in macs.items() if mac and name in names]
    if any(mac and name not in names for name, mac in macs.items()):
        raise BadRequest("tether does not support EndpointSettings.MacAddress yet")
    return own[0] if own else ""
