"""`run`/`create` flags for the container's process and log options, read as the docker CLI
reads them (its texts for bad values, exit 125 before the daemon is asked): the HostConfig
fields they give, and --mac-address's endpoint setting."""
from __future__ import annotations

import re
from typing import Any, Callable

import click

from tether.cli.client import CliError
from tether.rules import container_mode
from tether.rules.process_options import DEVICE_RULE, IPC_SYSCTLS, parse_ulimit
from tether.rules.units import ram_in_bytes

_MAC = re.compile(r"^[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}$")


def usage(flag: str, value: str, reason: str) -> click.UsageError:
    """The docker CLI's text for a flag value it cannot read."""
    return click.UsageError(f'invalid argument "{value}" for "{flag}" flag: {reason}')


def device(text: str) -> dict[str, str]:
    """`HOST[:CONTAINER][:PERMISSIONS]` as the docker CLI's parseDevice splits it."""
    parts = text.split(":")
    host, container, mode = parts[0], parts[0], "rwm"
    if len(parts) == 3:
        container, mode = parts[1], parts[2]
    elif len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm") and len(parts[1]) <= 3:
            mode = parts[1]
        else:
            container = parts[1]
    elif len(parts) > 3:
        raise ValueError(f"invalid device specification: {text}")
    if not (mode and set(mode) <= set("rwm") and len(mode) <= 3):
        raise ValueError(f"invalid device mode: {mode}")
    return {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": mode}


def host_config(params: dict[str, Any]) -> dict[str, Any]:
    """The HostConfig fields of these flags (only those given, as the docker CLI omits them)."""
    config: dict[str, Any] = {}
    try:
        ulimits = [parse_ulimit(v) for v in params["ulimit"]]
    except ValueError as exc:
        raise usage("--ulimit", next(iter(params["ulimit"])), str(exc)) from None
    if ulimits:
        config["Ulimits"] = ulimits
    sysctls = {}
    for value in params["sysctl"]:
        key, sep, setting = value.partition("=")
        if not sep or not (key in IPC_SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
            raise usage("--sysctl", value, f"sysctl '{value}' is not allowed")
        sysctls[key] = setting
    if sysctls:
        config["Sysctls"] = sysctls
    if params["group_add"]:
        config["GroupAdd"] = list(params["group_add"])
    devices = []
    for value in params["device"]:
        try:
            devices.append(device(value))
        except ValueError as exc:
            raise usage("--device", value, str(exc)) from None
    if devices:
        config["Devices"] = devices
    for value in params["device_cgroup_rule"]:
        if not DEVICE_RULE.match(value):
            raise usage("--device-cgroup-rule", value, f"invalid device cgroup format '{value}'")
    if params["device_cgroup_rule"]:
        config["DeviceCgroupRules"] = list(params["device_cgroup_rule"])
    if params["init"]:
        config["Init"] = True
    if params["oom_score_adj"]:
        config["OomScoreAdj"] = params["oom_score_adj"]
    if params["shm_size"]:
        try:
            config["ShmSize"] = ram_in_bytes(params["shm_size"])
        except ValueError as exc:
            raise usage("--shm-size", params["shm_size"], str(exc)) from None
    log_opts = {}
    for value in params["log_opt"]:
        key, sep, setting = value.partition("=")
        if not sep:
            raise usage("--log-opt", value, "invalid key value pair format in log opts")
        log_opts[key] = setting
    if params["log_driver"] or log_opts:
        config["LogConfig"] = {"Type": params["log_driver"] or "", "Config": log_opts}
    for flag, key in (("ipc", "IpcMode"), ("pid", "PidMode"), ("uts", "UTSMode")):
        if params[flag]:
            config[key] = params[flag]
    return config


def check_namespace_modes(host_config: dict[str, Any]) -> None:
    """The docker CLI's own checks of --pid and --uts (exit 125 before the daemon is asked);
    --ipc is left to the daemon, as the docker CLI 28 leaves it."""
    pid = host_config.get("PidMode") or ""
    if pid not in ("", "host") and not container_mode.donor(pid):
        raise CliError("--pid: invalid PID mode", code=125)
    if (host_config.get("UTSMode") or "") not in ("", "host"):
        raise CliError("--uts: invalid UTS mode", code=125)


def mac_address(params: dict[str, Any]) -> str:
    """`--mac-address`, checked as the docker CLI's ValidateMACAddress."""
    mac = params["mac_address"]
    if mac and not _MAC.match(mac):
        raise click.UsageError(f"{mac} is not a valid mac address")
    return mac


def options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags, for run and create."""
    decorators = [
        click.option("--ulimit", multiple=True, help="NAME=SOFT[:HARD] resource limit"),
        click.option("--shm-size", default="", help="How big the /dev/shm tmpfs is (64MB unless given)"),
        click.option("--sysctl", multiple=True, help="KEY=VALUE namespaced kernel parameter"),
        click.option("--group-add", multiple=True, help="Extra group (name or GID) to run with"),
        click.option("--device", multiple=True,
                     help="HOST[:CONTAINER][:rwm] device node to give the container"),
        click.option("--device-cgroup-rule", multiple=True,
                     help="'TYPE MAJOR:MINOR ACCESS' rule for the device cgroup"),
        click.option("--init", is_flag=True, help="Run an init as PID 1 that reaps and forwards"),
        click.option("--oom-score-adj", type=int, default=0,
                     help="OOM killer preference, -1000 to 1000"),
        click.option("--mac-address", default="", help="MAC of the container's interface"),
        click.option("--log-driver", default="", help="json-file, local or none"),
        click.option("--log-opt", multiple=True, help="KEY=VALUE option of the log driver"),
        click.option("--ipc", default="",
                     help="IPC namespace: private, shareable, host, none or container:NAME|ID"),
        click.option("--pid", default="", help="PID namespace: host or container:NAME|ID"),
        click.option("--uts", default="", help="UTS namespace (hostname): host"),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn
