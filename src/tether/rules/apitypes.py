"""The Go types of the Engine API's request bodies, and a checker with Go's encoding/json wording.

dockerd decodes every JSON body into Go structs before it looks at a single field, so a value of
the wrong type is refused up front with `json: cannot unmarshal <kind> into Go struct field
<Struct>.<Field path> of type <type>`, and nothing is stored. tether does the same here: each
Docker struct is declared once (`Struct`, field name -> type), and `check(value, type)` walks a
decoded JSON value along it the way encoding/json would, raising `GoTypeError` with Go's text at
the first mismatch in document order.

What it returns is what Go would hold after decoding: field names in their declared spelling
(Go matches keys case-insensitively), unknown fields dropped, a lone string for a StrSlice turned
into a one-element list, and a null inside a slice, array or map turned into the element's zero
value. A null field stays None (Go leaves the field at its zero value). Reading the body's
JSON as Go does (syntax errors, number literals) is tether.rules.gojson's job. Pure: stdlib only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.rules.gojson import JsonFloat


class GoTypeError(ValueError):
    """A value encoding/json cannot decode into its declared type; `str(exc)` is Go's text."""


def _json_kind(value: Any) -> str:
    """How encoding/json names a JSON value in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_text(value: int | float) -> str:
    if isinstance(value, JsonFloat):
        return value.text
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class _Context:
    """encoding/json's errorContext: the innermost struct being decoded and the field path."""

    struct: str | None = None
    fields: tuple[str, ...] = ()

    def error(self, value_text: str, go_type: str) -> GoTypeError:
        if self.struct is None and not self.fields:
            return GoTypeError(f"json: cannot unmarshal {value_text} into Go value of type "
                               f"{go_type}")
        return GoTypeError(f"json: cannot unmarshal {value_text} into Go struct field "
                           f"{self.struct}.{'.'.join(self.fields)} of type {go_type}")


class GoType:
    """One Go type: `name` is how Go prints it (reflect.Type.String)."""

    name: str

    def decode(self, value: Any, ctx: _Context) -> Any:
        raise NotImplementedError

    def zero(self) -> Any:
        """The value of a null element of this type (Go's zero value)."""
        return None

    def __str__(self) -> str:
        return self.name


@dataclass(eq=False)
class Scalar(GoType):
    """string, bool or a named string type (`container.NetworkMode`)."""

    name: str
    kind: type

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if self.kind is bool and isinstance(value, bool) or \
                self.kind is str and isinstance(value, str):
            return value
        raise ctx.error(_json_kind(value), self.name)

    def zero(self) -> Any:
        return self.kind()


@dataclass(eq=False)
class Integer(GoType):
    """A Go integer type: only an integer literal within range decodes into it."""

    name: str
    bits: int
    signed: bool = True

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(_json_kind(value), self.name)
        low, high = (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.signed \
            else (0, (1 << self.bits) - 1)
        if isinstance(value, float) or not low <= value <= high:
            raise ctx.error(f"number {_number_text(value)}", self.name)
        return value

    def zero(self) -> Any:
        return 0


@dataclass(eq=False)
class Float(GoType):
    name: str = "float64"

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(_json_kind(value), self.name)
        if float(value) in (float("inf"), float("-inf")):
            raise ctx.error(f"number {_number_text(value)}", self.name)
        return value

    def zero(self) -> Any:
        return 0.0


@dataclass(eq=False)
class Slice(GoType):
    elem: GoType
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"[]{self.elem.name}"

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ctx.error(_json_kind(value), self.name)
        return [self.elem.zero() if item is None else self.elem.decode(item, ctx)
                for item in value]


@dataclass(eq=False)
class Array(GoType):
    """A fixed-size Go array: extra elements are dropped, missing ones are zero."""

    elem: GoType
    length: int

    def __post_init__(self) -> None:
        self.name = f"[{self.length}]{self.elem.name}"

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ctx.error(_json_kind(value), self.name)
        items = [self.elem.zero() if item is None else self.elem.decode(item, ctx)
                 for item in value]
        return (items + [self.elem.zero()] * self.length)[:self.length]

    def zero(self) -> Any:
        return [self.elem.zero()] * self.length


@dataclass(eq=False)
class Map(GoType):
    """A map with string keys (every map in the API has them)."""

    elem: GoType
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"map[string]{self.elem.name}"

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ctx.error(_json_kind(value), self.name)
        return {key: self.elem.zero() if item is None else self.elem.decode(item, ctx)
                for key, item in value.items()}


@dataclass(eq=False)
class Pointer(GoType):
    """`*T`: named `*T` inside a slice or map type, but Go reports T for a value it refused."""

    elem: GoType

    def __post_init__(self) -> None:
        self.name = f"*{self.elem.name}"

    def decode(self, value: Any, ctx: _Context) -> Any:
        return None if value is None else self.elem.decode(value, ctx)


@dataclass(eq=False)
class StrSlice(GoType):
    """strslice.StrSlice: a list of strings or one string. Its UnmarshalJSON retries a refused
    value as a string, so Go's error names type `string` and the whole value's kind."""

    name: str = "strslice.StrSlice"

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(item is None or isinstance(item, str)
                                           for item in value):
            return ["" if item is None else item for item in value]
        raise ctx.error(_json_kind(value), "string")


@dataclass(eq=False)
class Struct(GoType):
    """A Go struct: `name` is its package-qualified type name, `fields` its JSON field names
    (embedded structs' fields flattened in, as Go promotes them) and their types."""

    name: str
    fields: dict[str, GoType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._folded: dict[str, str] = {}
        for key in self.fields:
            self._folded.setdefault(key.lower(), key)

    @property
    def short(self) -> str:
        """The type's bare name, which Go's errors print before the field path."""
        return self.name.rpartition(".")[2]

    def field_named(self, key: str) -> str | None:
        """The declared field a JSON key sets: the exact name first, then Go's case folding."""
        if key in self.fields:
            return key
        return self._folded.get(key.lower())

    def decode(self, value: Any, ctx: _Context) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ctx.error(_json_kind(value), self.name)
        result: dict[str, Any] = {}
        for key, item in value.items():
            name = self.field_named(key)
            if name is None:
                continue  # encoding/json ignores unknown fields
            inner = _Context(self.short, (*ctx.fields, name))
            result[name] = self.fields[name].decode(item, inner)
        return result

    def zero(self) -> Any:
        """A zero struct as Go marshals it back: every field at its zero value."""
        return {name: go_type.zero() for name, go_type in self.fields.items()}


def check(value: Any, go_type: GoType) -> Any:
    """`value` as Go would hold it after decoding into `go_type`; GoTypeError with Go's text at
    the first value that does not fit."""
    return go_type.decode(value, _Context())


def extend(base: Struct, name: str, **fields: GoType) -> Struct:
    """A struct embedding `base` (its fields promoted) plus its own fields."""
    return Struct(name, {**base.fields, **fields})


# ---- building blocks -----------------------------------------------------------------------------
STRING = Scalar("string", str)
BOOL = Scalar("bool", bool)
INT = Integer("int", 64)
INT64 = Integer("int64", 64)
UINT = Integer("uint", 64, signed=False)
UINT16 = Integer("uint16", 16, signed=False)
UINT64 = Integer("uint64", 64, signed=False)
FILE_MODE = Integer("fs.FileMode", 32, signed=False)
DURATION = Integer("time.Duration", 64)
STRINGS = Slice(STRING)
STRING_MAP = Map(STRING)
EMPTY = Struct("struct {}")


def _named_string(name: str) -> Scalar:
    return Scalar(name, str)


# ---- api/types/container, mount, blkiodev, go-units, go-connections/nat ------------------------
HEALTH_CONFIG = Struct("container.HealthConfig", {
    "Test": STRINGS, "Interval": DURATION, "Timeout": DURATION, "StartPeriod": DURATION,
    "StartInterval": DURATION, "Retries": INT})

PORT_SET = Map(EMPTY, "nat.PortSet")

CONTAINER_CONFIG = Struct("container.Config", {
    "Hostname": STRING, "Domainname": STRING, "User": STRING, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL, "ExposedPorts": PORT_SET, "Tty": BOOL,
    "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": STRINGS, "Cmd": StrSlice(),
    "Healthcheck": Pointer(HEALTH_CONFIG), "ArgsEscaped": BOOL, "Image": STRING,
    "Volumes": Map(EMPTY), "WorkingDir": STRING, "Entrypoint": StrSlice(),
    "NetworkDisabled": BOOL, "MacAddress": STRING, "OnBuild": STRINGS, "Labels": STRING_MAP,
    "StopSignal": STRING, "StopTimeout": Pointer(INT), "Shell": StrSlice()})

WEIGHT_DEVICE = Struct("blkiodev.WeightDevice", {"Path": STRING, "Weight": UINT16})
THROTTLE_DEVICE = Struct("blkiodev.ThrottleDevice", {"Path": STRING, "Rate": UINT64})
DEVICE_MAPPING = Struct("container.DeviceMapping", {
    "PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING})
DEVICE_REQUEST = Struct("container.DeviceRequest", {
    "Driver": STRING, "Count": INT, "DeviceIDs": STRINGS, "Capabilities": Slice(STRINGS),
    "Options": STRING_MAP})
ULIMIT = Struct("units.Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})

RESOURCES = Struct("container.Resources", {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CgroupParent": STRING,
    "BlkioWeight": UINT16, "BlkioWeightDevice": Slice(Pointer(WEIGHT_DEVICE)),
    "BlkioDeviceReadBps": Slice(Pointer(THROTTLE_DEVICE)),
    "BlkioDeviceWriteBps": Slice(Pointer(THROTTLE_DEVICE)),
    "BlkioDeviceReadIOps": Slice(Pointer(THROTTLE_DEVICE)),
    "BlkioDeviceWriteIOps": Slice(Pointer(THROTTLE_DEVICE)),
    "CpuPeriod": INT64, "CpuQuota": INT64, "CpuRealtimePeriod": INT64,
    "CpuRealtimeRuntime": INT64, "CpusetCpus": STRING, "CpusetMems": STRING,
    "Devices": Slice(DEVICE_MAPPING), "DeviceCgroupRules": STRINGS,
    "DeviceRequests": Slice(DEVICE_REQUEST), "KernelMemory": INT64, "KernelMemoryTCP": INT64,
    "MemoryReservation": INT64, "MemorySwap": INT64, "MemorySwappiness": Pointer(INT64),
    "OomKillDisable": Pointer(BOOL), "PidsLimit": Pointer(INT64),
    "Ulimits": Slice(Pointer(ULIMIT)), "CpuCount": INT64, "CpuPercent": INT64,
    "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64})

# Docker 20.10 (the reference engine) names the restart policy's mode `string`.
RESTART_POLICY = Struct("container.RestartPolicy", {"Name": STRING, "MaximumRetryCount": INT})
LOG_CONFIG = Struct("container.LogConfig", {"Type": STRING, "Config": STRING_MAP})
PORT_BINDING = Struct("nat.PortBinding", {"HostIp": STRING, "HostPort": STRING})
PORT_MAP = Map(Slice(PORT_BINDING), "nat.PortMap")

MOUNT_DRIVER = Struct("mount.Driver", {"Name": STRING, "Options": STRING_MAP})
BIND_OPTIONS = Struct("mount.BindOptions", {
    "Propagation": _named_string("mount.Propagation"), "NonRecursive": BOOL,
    "CreateMountpoint": BOOL, "ReadOnlyNonRecursive": BOOL, "ReadOnlyForceRecursive": BOOL})
VOLUME_OPTIONS = Struct("mount.VolumeOptions", {
    "NoCopy": BOOL, "Labels": STRING_MAP, "DriverConfig": Pointer(MOUNT_DRIVER)})
TMPFS_OPTIONS = Struct("mount.TmpfsOptions", {"SizeBytes": INT64, "Mode": FILE_MODE})
MOUNT = Struct("mount.Mount", {
    "Type": _named_string("mount.Type"), "Source": STRING, "Target": STRING, "ReadOnly": BOOL,
    "Consistency": _named_string("mount.Consistency"), "BindOptions": Pointer(BIND_OPTIONS),
    "VolumeOptions": Pointer(VOLUME_OPTIONS), "TmpfsOptions": Pointer(TMPFS_OPTIONS),
    "ClusterOptions": Pointer(Struct("mount.ClusterOptions"))})

HOST_CONFIG = extend(
    RESOURCES, "container.HostConfig",
    Binds=STRINGS, ContainerIDFile=STRING, LogConfig=LOG_CONFIG,
    NetworkMode=_named_string("container.NetworkMode"), PortBindings=PORT_MAP,
    RestartPolicy=RESTART_POLICY, AutoRemove=BOOL, VolumeDriver=STRING, VolumesFrom=STRINGS,
    ConsoleSize=Array(UINT, 2), Annotations=STRING_MAP, CapAdd=StrSlice(), CapDrop=StrSlice(),
    CgroupnsMode=_named_string("container.CgroupnsMode"), Dns=STRINGS, DnsOptions=STRINGS,
    DnsSearch=STRINGS, ExtraHosts=STRINGS, GroupAdd=STRINGS,
    IpcMode=_named_string("container.IpcMode"), Cgroup=_named_string("container.CgroupSpec"),
    Links=STRINGS, OomScoreAdj=INT, PidMode=_named_string("container.PidMode"),
    Privileged=BOOL, PublishAllPorts=BOOL, ReadonlyRootfs=BOOL, SecurityOpt=STRINGS,
    StorageOpt=STRING_MAP, Tmpfs=STRING_MAP, UTSMode=_named_string("container.UTSMode"),
    UsernsMode=_named_string("container.UsernsMode"), ShmSize=INT64, Sysctls=STRING_MAP,
    Runtime=STRING, Isolation=_named_string("container.Isolation"),
    Mounts=Slice(MOUNT), MaskedPaths=STRINGS, ReadonlyPaths=STRINGS, Init=Pointer(BOOL))

UPDATE_CONFIG = extend(RESOURCES, "container.UpdateConfig", RestartPolicy=RESTART_POLICY)

# ---- api/types/network ---------------------------------------------------------------------------
ENDPOINT_IPAM_CONFIG = Struct("network.EndpointIPAMConfig", {
    "IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS})
ENDPOINT_SETTINGS = Struct("network.EndpointSettings", {
    "IPAMConfig": Pointer(ENDPOINT_IPAM_CONFIG), "Links": STRINGS, "Aliases": STRINGS,
    "MacAddress": STRING, "DriverOpts": STRING_MAP, "NetworkID": STRING, "EndpointID": STRING,
    "Gateway": STRING, "IPAddress": STRING, "IPPrefixLen": INT, "IPv6Gateway": STRING,
    "GlobalIPv6Address": STRING, "GlobalIPv6PrefixLen": INT, "DNSNames": STRINGS})
NETWORKING_CONFIG = Struct("network.NetworkingConfig", {
    "EndpointsConfig": Map(Pointer(ENDPOINT_SETTINGS))})

IPAM_CONFIG = Struct("network.IPAMConfig", {
    "Subnet": STRING, "IPRange": STRING, "Gateway": STRING, "AuxiliaryAddresses": STRING_MAP})
IPAM = Struct("network.IPAM", {"Driver": STRING, "Options": STRING_MAP,
                               "Config": Slice(IPAM_CONFIG)})
NETWORK_CREATE = Struct("types.NetworkCreateRequest", {
    "Name": STRING, "CheckDuplicate": BOOL, "Driver": STRING, "Scope": STRING,
    "EnableIPv6": BOOL, "IPAM": Pointer(IPAM), "Internal": BOOL, "Attachable": BOOL,
    "Ingress": BOOL, "ConfigOnly": BOOL,
    "ConfigFrom": Pointer(Struct("network.ConfigReference", {"Network": STRING})),
    "Options": STRING_MAP, "Labels": STRING_MAP})
NETWORK_CONNECT = Struct("types.NetworkConnect", {
    "Container": STRING, "EndpointConfig": Pointer(ENDPOINT_SETTINGS)})
NETWORK_DISCONNECT = Struct("types.NetworkDisconnect", {"Container": STRING, "Force": BOOL})

# ---- the other request bodies --------------------------------------------------------------------
CONTAINER_CREATE = extend(
    CONTAINER_CONFIG, "runconfig.ContainerConfigWrapper",
    HostConfig=Pointer(HOST_CONFIG), NetworkingConfig=Pointer(NETWORKING_CONFIG))

EXEC_CONFIG = Struct("types.ExecConfig", {
    "User": STRING, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": Pointer(Array(UINT, 2)),
    "AttachStdin": BOOL, "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL,
    "DetachKeys": STRING, "Env": STRINGS, "WorkingDir": STRING, "Cmd": STRINGS})

EXEC_START_CHECK = Struct("types.ExecStartCheck", {
    "Detach": BOOL, "Tty": BOOL, "ConsoleSize": Pointer(Array(UINT, 2))})

VOLUME_CREATE = Struct("volume.CreateOptions", {
    "ClusterVolumeSpec": Pointer(Struct("volume.ClusterVolumeSpec")), "Driver": STRING,
    "DriverOpts": STRING_MAP, "Labels": STRING_MAP, "Name": STRING})
