"""Which fields of the spec tether applies: nothing is accepted that is not applied.

Every field of Config, HostConfig (Resources' fields at its level, as in the API) and of the
EndpointSettings a create body may carry has one entry: `APPLIED` (enforced for any value),
`REFUSED` (any value but the zero one is a 400 naming the field), or `only(...)` (the values
tether applies; any other is refused). `refusals(...)` runs at create, on the request as sent,
after dockerd's own checks (those of the limits discard, with dockerd's Warnings, what this
kernel cannot limit): `tether does not support HostConfig.<Field> yet`. Turning a refusal
into a feature is one line here, next to its field in spec/types.py and its compilation in
runtime/oci.py. tests/unit/test_spec_support.py holds the table to the API's field list, and
tests/integration/test_spec_walk.py checks each field against a running daemon. Pure.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field
from typing import Any

from tether.rules import container_mode, log_options
from tether.rules.errors import BadRequest
from tether.spec import create
from tether.spec.fields import is_default, walk
from tether.spec.types import Config, EndpointSettings, HostConfig, LogConfig

# a check: None when tether applies the value, else the refused part's name ("" = the field)
Check = Callable[[Any], "str | None"]


def APPLIED(value: Any) -> str | None:
    """Applied whatever its value."""
    return None


def REFUSED(value: Any) -> str | None:
    """Not implemented: only its zero value passes."""
    return ""


def only(*values: Any) -> Check:
    """Applied for these values (the zero one and those that mean what tether does)."""
    def check(value: Any) -> str | None:
        return None if value in values else ""
    check.accepted = values  # type: ignore[attr-defined]
    return check


def _log_config(value: LogConfig) -> str | None:
    """json-file, local and none with max-size, max-file and blocking mode are applied
    (rules/log_options.py); unknown drivers and options get dockerd's texts later, at create."""
    return log_options.unapplied(value.type, value.config)


def _no_keys(value: dict[str, str]) -> str | None:
    """A map none of whose keys is applied: the first key (sorted) is named, `.<key>`."""
    return f".{min(value)}" if value else None


def _joinable(*values: str) -> Check:
    """These values, or `container:<name|id>` (engine/shared_ns.py joins its namespace)."""
    def check(value: str) -> str | None:
        return None if value in values or container_mode.donor(value) else ""
    return check


HOST_CONFIG: dict[str, Check] = {
    "Binds": APPLIED,
    "ContainerIDFile": APPLIED,  # the client writes the file; the engine stores the name
    "LogConfig": _log_config,
    "NetworkMode": APPLIED,
    "PortBindings": APPLIED,
    "RestartPolicy": APPLIED,
    "AutoRemove": APPLIED,
    "VolumeDriver": APPLIED,  # Binds' and Config.Volumes' volumes' driver (only local exists)
    "VolumesFrom": APPLIED,
    "Annotations": REFUSED,
    "CapAdd": APPLIED,
    "CapDrop": APPLIED,
    "CgroupnsMode": only("", "host", "private"),  # private: a cgroup namespace (runtime/oci.py)
    "Dns": APPLIED,
    "DnsOptions": APPLIED,
    "DnsSearch": APPLIED,
    "ExtraHosts": APPLIED,
    "GroupAdd": APPLIED,
    "IpcMode": _joinable("", "private", "shareable", "host", "none"),
    "Cgroup": REFUSED,
    "Links": APPLIED,
    "OomScoreAdj": APPLIED,
    "PidMode": _joinable("", "host"),
    "Privileged": APPLIED,
    "PublishAllPorts": APPLIED,
    "ReadonlyRootfs": APPLIED,
    "SecurityOpt": APPLIED,
    "StorageOpt": REFUSED,
    "Tmpfs": APPLIED,
    "UTSMode": only("", "host"),  # host: the host's hostname, no UTS namespace (runtime/oci.py)
    "UsernsMode": only("", "host"),  # no user namespaces: every container has the host's
    "ShmSize": APPLIED,
    "Sysctls": APPLIED,
    "Runtime": only("", create.DEFAULT_RUNTIME),
    "ConsoleSize": APPLIED,
    "Isolation": only("", "default"),
    "CpuShares": APPLIED,
    "Memory": APPLIED,
    "NanoCpus": APPLIED,
    "CgroupParent": APPLIED,
    "BlkioWeight": APPLIED,  # where the kernel cannot weigh I/O: discarded with dockerd's warning
    "BlkioWeightDevice": APPLIED,
    "BlkioDeviceReadBps": APPLIED,
    "BlkioDeviceWriteBps": APPLIED,
    "BlkioDeviceReadIOps": APPLIED,
    "BlkioDeviceWriteIOps": APPLIED,
    "CpuPeriod": APPLIED,
    "CpuQuota": APPLIED,
    "CpuRealtimePeriod": APPLIED,
    "CpuRealtimeRuntime": APPLIED,
    "CpusetCpus": APPLIED,
    "CpusetMems": APPLIED,
    "Devices": APPLIED,
    "DeviceCgroupRules": APPLIED,
    "DeviceRequests": REFUSED,
    "KernelMemory": APPLIED,  # where the kernel ignores it: discarded with dockerd's warning
    "KernelMemoryTCP": APPLIED,
    "MemoryReservation": APPLIED,
    "MemorySwap": APPLIED,
    "MemorySwappiness": APPLIED,  # -1: the docker CLI's "not set"
    "OomKillDisable": APPLIED,
    "PidsLimit": APPLIED,
    "Ulimits": APPLIED,
    "CpuCount": REFUSED,  # Windows only; dockerd on Linux keeps it silently, tether refuses it
    "CpuPercent": APPLIED,  # Windows only: discarded at create with dockerd's warning, as dockerd
    "IOMaximumIOps": REFUSED,  # Windows only; refused first by dockerd's own check
    "IOMaximumBandwidth": REFUSED,  # Windows only; refused first by dockerd's own check
    "Mounts": APPLIED,
    "MaskedPaths": APPLIED,
    "ReadonlyPaths": APPLIED,
    "Init": APPLIED,
}

CONFIG: dict[str, Check] = {
    "Hostname": APPLIED,
    "Domainname": APPLIED,
    "User": APPLIED,
    "AttachStdin": APPLIED,
    "AttachStdout": APPLIED,
    "AttachStderr": APPLIED,
    "ExposedPorts": APPLIED,
    "Tty": APPLIED,
    "OpenStdin": APPLIED,
    "StdinOnce": APPLIED,
    "Env": APPLIED,
    "Cmd": APPLIED,
    "Healthcheck": APPLIED,
    "ArgsEscaped": APPLIED,  # Windows only: dockerd ignores it on Linux, as tether does
    "Image": APPLIED,
    "Volumes": APPLIED,
    "WorkingDir": APPLIED,
    "Entrypoint": APPLIED,
    "NetworkDisabled": REFUSED,
    "MacAddress": APPLIED,  # the MAC of the endpoint on the container's own network
    "OnBuild": APPLIED,  # kept for commit, as dockerd
    "Labels": APPLIED,
    "StopSignal": APPLIED,
    "StopTimeout": APPLIED,  # stop's default grace period
    "Shell": APPLIED,  # kept for commit, as dockerd
}

# what a create body's (or `network connect`'s) endpoint may set; the operational fields are
# dockerd's to fill, and it ignores them in a request, as tether does
ENDPOINT_SETTINGS: dict[str, Check] = {
    "IPAMConfig": APPLIED,
    "Links": APPLIED,
    "Aliases": APPLIED,
    "MacAddress": APPLIED,  # the own network's, kept as Config.MacAddress (as API 1.44)
    "DriverOpts": _no_keys,  # the bridge driver reads no endpoint option: each one refused
    "NetworkID": APPLIED,
    "EndpointID": APPLIED,
    "Gateway": APPLIED,
    "IPAddress": APPLIED,
    "IPPrefixLen": APPLIED,
    "IPv6Gateway": APPLIED,
    "GlobalIPv6Address": APPLIED,
    "GlobalIPv6PrefixLen": APPLIED,
    "DNSNames": APPLIED,
}

TABLES: dict[str, tuple[type, dict[str, Check]]] = {
    "HostConfig": (HostConfig, HOST_CONFIG),
    "Config": (Config, CONFIG),
    "EndpointSettings": (EndpointSettings, ENDPOINT_SETTINGS),
}


def _refused(struct: str, obj: Any) -> str | None:
    """The first field of `obj` set to a value tether does not apply, as `Struct.Field`."""
    _, table = TABLES[struct]
    for path, f in walk(type(obj)):
        holder = _holder(obj, f)
        if holder is None or is_default(holder, f):
            continue
        part = table[path](getattr(holder, f.name))
        if part is not None:
            return f"{struct}.{path}{part}"
    return None


def _holder(obj: Any, f: Field) -> Any:
    """The object (the spec or its embedded Resources) that holds field `f`."""
    if f in type(obj).__dataclass_fields__.values():
        return obj
    for own in type(obj).__dataclass_fields__.values():
        if own.metadata["embedded"]:
            inner = getattr(obj, own.name)
            if f in type(inner).__dataclass_fields__.values():
                return inner
    return None


def refusals(config: Config, host_config: HostConfig,
             endpoints: dict[str, EndpointSettings | None] | None = None) -> None:
    """400 `tether does not support <Struct>.<Field> yet` for the first field of the request
    that tether would not apply."""
    named = _refused("HostConfig", host_config) or _refused("Config", config)
    for settings in (endpoints or {}).values():
        named = named or (settings and _refused("EndpointSettings", settings))
    if named:
        raise BadRequest(f"tether does not support {named} yet")
