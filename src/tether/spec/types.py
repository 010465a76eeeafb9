"""A container's creation spec as typed values: API 1.44's container.Config, HostConfig (with
the Resources it embeds, as Go does), RestartPolicy, LogConfig, HealthConfig and the create
body's NetworkingConfig / EndpointSettings.

Each field carries its API name (`fields.api`); the declaration order is Go's field order, which
inspect keeps (Docker 20.10's order where API 1.44 moved a field). Zero values are Go's: "" and 0
and False, None for a nil slice, map or pointer. List-shaped structs the mount and device rules
read as they come (Mounts, Ulimits, Devices, blkio devices) stay as the decoded dicts: their own
parsers (engine/mountspec.py) own their meaning. Pure: standard library and tether.rules only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.spec.fields import api, parse, render

Strings = list[str] | None
StringMap = dict[str, str] | None


@dataclass
class HealthConfig:
    test: Strings = api("Test", omitempty=True)
    interval: int = api("Interval", 0, omitempty=True)
    timeout: int = api("Timeout", 0, omitempty=True)
    start_period: int = api("StartPeriod", 0, omitempty=True)
    start_interval: int = api("StartInterval", 0, omitempty=True)
    retries: int = api("Retries", 0, omitempty=True)


@dataclass
class Config:
    hostname: str = api("Hostname", "")
    domainname: str = api("Domainname", "")
    user: str = api("User", "")
    attach_stdin: bool = api("AttachStdin", False)
    attach_stdout: bool = api("AttachStdout", False)
    attach_stderr: bool = api("AttachStderr", False)
    exposed_ports: dict[str, dict] | None = api("ExposedPorts", omitempty=True)
    tty: bool = api("Tty", False)
    open_stdin: bool = api("OpenStdin", False)
    stdin_once: bool = api("StdinOnce", False)
    env: Strings = api("Env")
    cmd: Strings = api("Cmd")
    healthcheck: HealthConfig | None = api("Healthcheck", omitempty=True, nested=HealthConfig,
                                           pointer=True)
    args_escaped: bool = api("ArgsEscaped", False, omitempty=True)
    image: str = api("Image", "")
    volumes: dict[str, dict] | None = api("Volumes")
    working_dir: str = api("WorkingDir", "")
    entrypoint: Strings = api("Entrypoint")
    network_disabled: bool = api("NetworkDisabled", False, omitempty=True)
    mac_address: str = api("MacAddress", "", omitempty=True)
    on_build: Strings = api("OnBuild")
    labels: StringMap = api("Labels")
    stop_signal: str = api("StopSignal", "", omitempty=True)
    stop_timeout: int | None = api("StopTimeout", omitempty=True)
    shell: Strings = api("Shell", omitempty=True)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Config:
        return parse(cls, data)

    def to_api(self, omit: bool = True) -> dict[str, Any]:
        return render(self, omit=omit)


@dataclass
class RestartPolicy:
    name: str = api("Name", "")
    maximum_retry_count: int = api("MaximumRetryCount", 0)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> RestartPolicy:
        return parse(cls, data)

    def to_api(self) -> dict[str, Any]:
        return render(self)


@dataclass
class LogConfig:
    type: str = api("Type", "")
    config: StringMap = api("Config")


@dataclass
class Resources:
    cpu_shares: int = api("CpuShares", 0)
    memory: int = api("Memory", 0)
    nano_cpus: int = api("NanoCpus", 0)
    cgroup_parent: str = api("CgroupParent", "")
    blkio_weight: int = api("BlkioWeight", 0)
    blkio_weight_device: list[dict] | None = api("BlkioWeightDevice")
    blkio_device_read_bps: list[dict] | None = api("BlkioDeviceReadBps")
    blkio_device_write_bps: list[dict] | None = api("BlkioDeviceWriteBps")
    blkio_device_read_iops: list[dict] | None = api("BlkioDeviceReadIOps")
    blkio_device_write_iops: list[dict] | None = api("BlkioDeviceWriteIOps")
    cpu_period: int = api("CpuPeriod", 0)
    cpu_quota: int = api("CpuQuota", 0)
    cpu_realtime_period: int = api("CpuRealtimePeriod", 0)
    cpu_realtime_runtime: int = api("CpuRealtimeRuntime", 0)
    cpuset_cpus: str = api("CpusetCpus", "")
    cpuset_mems: str = api("CpusetMems", "")
    devices: list[dict] | None = api("Devices")
    device_cgroup_rules: Strings = api("DeviceCgroupRules")
    device_requests: list[dict] | None = api("DeviceRequests")
    kernel_memory: int = api("KernelMemory", 0)
    kernel_memory_tcp: int = api("KernelMemoryTCP", 0)
    memory_reservation: int = api("MemoryReservation", 0)
    memory_swap: int = api("MemorySwap", 0)
    memory_swappiness: int | None = api("MemorySwappiness")
    oom_kill_disable: bool | None = api("OomKillDisable")
    pids_limit: int | None = api("PidsLimit")
    ulimits: list[dict] | None = api("Ulimits")
    cpu_count: int = api("CpuCount", 0)
    cpu_percent: int = api("CpuPercent", 0)
    io_maximum_iops: int = api("IOMaximumIOps", 0)
    io_maximum_bandwidth: int = api("IOMaximumBandwidth", 0)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Resources:
        return parse(cls, data)

    def to_api(self, omit: bool = True) -> dict[str, Any]:
        """The API-shaped fields tether.rules.resources checks and maps (Docker's names)."""
        return render(self, omit=omit)


@dataclass
class HostConfig:
    binds: Strings = api("Binds")
    container_id_file: str = api("ContainerIDFile", "")
    log_config: LogConfig = api("LogConfig", nested=LogConfig)
    network_mode: str = api("NetworkMode", "")
    port_bindings: dict[str, list[dict]] | None = api("PortBindings")
    restart_policy: RestartPolicy = api("RestartPolicy", nested=RestartPolicy)
    auto_remove: bool = api("AutoRemove", False)
    volume_driver: str = api("VolumeDriver", "")
    volumes_from: Strings = api("VolumesFrom")
    annotations: StringMap = api("Annotations", omitempty=True)
    cap_add: Strings = api("CapAdd")
    cap_drop: Strings = api("CapDrop")
    cgroupns_mode: str = api("CgroupnsMode", "")
    dns: Strings = api("Dns")
    dns_options: Strings = api("DnsOptions")
    dns_search: Strings = api("DnsSearch")
    extra_hosts: Strings = api("ExtraHosts")
    group_add: Strings = api("GroupAdd")
    ipc_mode: str = api("IpcMode", "")
    cgroup: str = api("Cgroup", "")
    links: Strings = api("Links")
    oom_score_adj: int = api("OomScoreAdj", 0)
    pid_mode: str = api("PidMode", "")
    privileged: bool = api("Privileged", False)
    publish_all_ports: bool = api("PublishAllPorts", False)
    readonly_rootfs: bool = api("ReadonlyRootfs", False)
    security_opt: Strings = api("SecurityOpt")
    storage_opt: StringMap = api("StorageOpt", omitempty=True)
    tmpfs: StringMap = api("Tmpfs", omitempty=True)
    uts_mode: str = api("UTSMode", "")
    userns_mode: str = api("UsernsMode", "")
    shm_size: int = api("ShmSize", 0)
    sysctls: StringMap = api("Sysctls", omitempty=True)
    runtime: str = api("Runtime", "", omitempty=True)
    console_size: list[int] = api("ConsoleSize", [0, 0])
    isolation: str = api("Isolation", "")
    resources: Resources = api("Resources", nested=Resources, embedded=True)
    mounts: list[dict] | None = api("Mounts", omitempty=True)
    masked_paths: Strings = api("MaskedPaths")
    readonly_paths: Strings = api("ReadonlyPaths")
    init: bool | None = api("Init", omitempty=True)

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> HostConfig:
        return parse(cls, data)

    def to_api(self, omit: bool = True) -> dict[str, Any]:
        return render(self, omit=omit)


@dataclass
class EndpointIPAMConfig:
    ipv4_address: str = api("IPv4Address", "", omitempty=True)
    ipv6_address: str = api("IPv6Address", "", omitempty=True)
    link_local_ips: Strings = api("LinkLocalIPs", omitempty=True)


@dataclass
class EndpointSettings:
    """What a create body may say of one network (and what `network connect` sends): the
    fields a client sets (IPAMConfig, Links, Aliases, MacAddress, DriverOpts) and the
    operational ones dockerd fills in and ignores when sent."""

    ipam_config: EndpointIPAMConfig | None = api("IPAMConfig", nested=EndpointIPAMConfig,
                                                 pointer=True)
    links: Strings = api("Links")
    aliases: Strings = api("Aliases")
    mac_address: str = api("MacAddress", "")
    driver_opts: StringMap = api("DriverOpts")
    network_id: str = api("NetworkID", "")
    endpoint_id: str = api("EndpointID", "")
    gateway: str = api("Gateway", "")
    ip_address: str = api("IPAddress", "")
    ip_prefix_len: int = api("IPPrefixLen", 0)
    ipv6_gateway: str = api("IPv6Gateway", "")
    global_ipv6_address: str = api("GlobalIPv6Address", "")
    global_ipv6_prefix_len: int = api("GlobalIPv6PrefixLen", 0)
    dns_names: Strings = api("DNSNames")


@dataclass
class NetworkingConfig:
    endpoints_config: dict[str, EndpointSettings | None] | None = api(
        "EndpointsConfig", nested=EndpointSettings, many=True)


@dataclass
class CreateSpec:
    """A create body, typed: what `POST /containers/create` asked for."""

    config: Config
    host_config: HostConfig
    networking: NetworkingConfig

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CreateSpec:
        """The parts of a body apitypes.check decoded into CONTAINER_CREATE."""
        return cls(parse(Config, body), parse(HostConfig, body.get("HostConfig")),
                   parse(NetworkingConfig, body.get("NetworkingConfig")))
