"""Nothing accepted that is not applied: every field of HostConfig, Config and the create body's
EndpointSettings (API 1.44, as tether.rules.apitypes declares them) is sent with a value that is
not its zero value, and each create either is refused with `tether does not support <Struct>.
<Field> yet` (400, no container left) or makes a container in which the field is checked: in
the OCI config runc was given, in the running container, or in inspect for the fields whose
whole effect is what the engine stores and shows (names of files the client writes, what commit
keeps). No third outcome; a field missing from SAMPLES or from the checks fails the walk.

Also docker-py's test_create_with_runtime, test_valid_no_log_driver_specified and
test_invalid_log_driver_raises_exception, written with the SDK against tetherd.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from tether.rules import apitypes
from tether.runtime import cgroups
from tether.spec import support
from tether.spec.fields import parse
from tether.spec.types import Config, EndpointSettings, HostConfig
from test_limits_vs_docker import _root_device

pytestmark = pytest.mark.integration

BLOCK = _root_device()  # the throttles need a block device (a character one fails the start)
BLOCK_NUMBER = f"{os.major(os.stat(BLOCK).st_rdev)}:{os.minor(os.stat(BLOCK).st_rdev)}"
# a value other than the zero one for every field, one that dockerd itself would accept
SAMPLES: dict[str, dict[str, Any]] = {
    "HostConfig": {
        "Binds": ["/tmp:/walk-bind:ro"], "ContainerIDFile": "/tmp/cid",
        "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
        "NetworkMode": "bridge", "PortBindings": {"80/tcp": [{"HostPort": "18080"}]},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}, "AutoRemove": True,
        "VolumeDriver": "other", "VolumesFrom": ["walk-src"], "Annotations": {"a": "b"},
        "CapAdd": ["NET_ADMIN"], "CapDrop": ["CHOWN"], "CgroupnsMode": "private",
        "Dns": ["192.0.2.53"], "DnsOptions": ["ndots:3"], "DnsSearch": ["walk.example"],
        "ExtraHosts": ["walkhost:192.0.2.9"], "GroupAdd": ["1000"], "IpcMode": "host",
        "Cgroup": "host", "Links": ["walk-src:src"], "OomScoreAdj": 100, "PidMode": "host",
        "Privileged": True, "PublishAllPorts": True, "ReadonlyRootfs": True,
        "SecurityOpt": ["no-new-privileges"], "StorageOpt": {"size": "1G"},
        "Tmpfs": {"/walk-tmp": "size=1m"}, "UTSMode": "host", "UsernsMode": "private",
        "ShmSize": 8 << 20, "Sysctls": {"net.ipv4.ip_forward": "1"}, "Runtime": "runc",
        "ConsoleSize": [30, 100], "Isolation": "hyperv",
        "CpuShares": 512, "Memory": 64 << 20, "NanoCpus": 500000000,
        "CgroupParent": "/tether-walk-parent",
        "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": BLOCK, "Weight": 300}],
        "BlkioDeviceReadBps": [{"Path": BLOCK, "Rate": 1024}],
        "BlkioDeviceWriteBps": [{"Path": BLOCK, "Rate": 1024}],
        "BlkioDeviceReadIOps": [{"Path": BLOCK, "Rate": 10}],
        "BlkioDeviceWriteIOps": [{"Path": BLOCK, "Rate": 10}],
        "CpuPeriod": 100000, "CpuQuota": 50000, "CpuRealtimePeriod": 1000,
        "CpuRealtimeRuntime": 100, "CpusetCpus": "0", "CpusetMems": "0",
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/walk",
                     "CgroupPermissions": "rwm"}],
        "DeviceCgroupRules": ["c 1:3 r"], "DeviceRequests": [{"Driver": "nvidia", "Count": 1}],
        "KernelMemory": 64 << 20, "KernelMemoryTCP": 64 << 20,
        "MemoryReservation": 32 << 20, "MemorySwap": 128 << 20, "MemorySwappiness": 10,
        "OomKillDisable": True, "PidsLimit": 20,
        "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "CpuCount": 1,
        "CpuPercent": 50, "IOMaximumIOps": 10, "IOMaximumBandwidth": 1024,
        "Mounts": [{"Type": "tmpfs", "Target": "/walk-mount"}],
        "MaskedPaths": ["/proc/walk"], "ReadonlyPaths": ["/proc/sys"], "Init": True,
    },
    "Config": {
        "Hostname": "walkhost", "Domainname": "walk.example", "User": "nobody",
        "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
        "ExposedPorts": {"7070/tcp": {}}, "Tty": True, "OpenStdin": True, "StdinOnce": True,
        "Env": ["WALK=1"], "Cmd": ["sleep", "61"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
        "ArgsEscaped": True, "Image": "busybox", "Volumes": {"/walk-vol": {}},
        "WorkingDir": "/walk-wd", "Entrypoint": ["/bin/sh", "-c", "exec \"$0\" \"$@\""],
        "NetworkDisabled": True, "MacAddress": "02:42:ac:11:00:99", "OnBuild": ["RUN true"],
        "Labels": {"walk": "yes"}, "StopSignal": "SIGUSR1", "StopTimeout": 3,
        "Shell": ["/bin/ash", "-c"],
    },
    "EndpointSettings": {
        "IPAMConfig": {"IPv4Address": "10.99.0.99"}, "Links": ["walk-src:src2"],
        "Aliases": ["walkalias"], "MacAddress": "02:42:ac:11:00:98",
        "DriverOpts": {"com.example": "1"}, "NetworkID": "x", "EndpointID": "x",
        "Gateway": "192.0.2.1", "IPAddress": "192.0.2.2", "IPPrefixLen": 24,
        "IPv6Gateway": "2001:db8::1", "GlobalIPv6Address": "2001:db8::2",
        "GlobalIPv6PrefixLen": 64, "DNSNames": ["walk"],
    },
}
# what a field needs beside it to show its effect (a port is published only when exposed, a
# console has a size only with a tty)
COMPANIONS: dict[str, dict[str, Any]] = {
    "HostConfig.PortBindings": {"ExposedPorts": {"80/tcp": {}}},
    "HostConfig.PublishAllPorts": {"ExposedPorts": {"7071/tcp": {}}},
    "HostConfig.ConsoleSize": {"Tty": True},
    "HostConfig.MemorySwap": {"HostConfig": {"Memory": 64 << 20}},  # dockerd: swap needs memory
}
GO_STRUCTS = {"HostConfig": apitypes.HOST_CONFIG, "Config": apitypes.CONTAINER_CONFIG,
              "EndpointSettings": apitypes.ENDPOINT_SETTINGS}
SPEC_TYPES = {"HostConfig": HostConfig, "Config": Config, "EndpointSettings": EndpointSettings}


def _body(struct: str, field: str) -> dict[str, Any]:
    value = SAMPLES[struct][field]
    companions = dict(COMPANIONS.get(f"{struct}.{field}", {}))
    body: dict[str, Any] = {"Image": "busybox", "Cmd": ["sleep", "61"],
                            "HostConfig": companions.pop("HostConfig", {}), **companions}
    if struct == "Config":
        body[field] = value
    elif struct == "HostConfig":
        body["HostConfig"][field] = value
    else:
        body["HostConfig"]["NetworkMode"] = "walknet"  # the default bridge refuses aliases & co.
        body["NetworkingConfig"] = {"EndpointsConfig": {"walknet": {field: value}}}
    return body


def _refused(struct: str, field: str) -> bool:
    """What spec/support.py says of the sample (the daemon's answer is then checked)."""
    spec = parse(SPEC_TYPES[struct], {field: SAMPLES[struct][field]})
    try:
        if struct == "EndpointSettings":
            support.refusals(Config(), HostConfig(), {"bridge": spec})
        elif struct == "Config":
            support.refusals(spec, HostConfig())
        else:
            support.refusals(Config(), spec)
    except Exception:
        return True
    return False


class Probe:
    """One created container and the ways to look at it."""

    def __init__(self, daemon, cid: str) -> None:
        self.daemon, self.cid = daemon, cid

    def inspect(self) -> dict[str, Any]:
        status, body = self.daemon.api("GET", f"/containers/{self.cid}/json")
        assert status == 200, body
        return body

    def start(self) -> None:
        status, body = self.daemon.api("POST", f"/containers/{self.cid}/start")
        assert status in (204, 304), body  # 304: already running

    def oci(self) -> dict[str, Any]:
        self.start()
        path = Path(self.daemon.exec_root) / "bundles" / self.cid / "config.json"
        return json.loads(path.read_text())

    def sh(self, script: str) -> str:
        """A command's output in the running container."""
        if not self.inspect()["State"]["Running"]:
            self.start()
        r = self.daemon.docker("exec", self.cid, "sh", "-c", script)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode()


def _hc(field: str) -> Callable[[Probe], bool]:
    return lambda p: p.inspect()["HostConfig"][field] == SAMPLES["HostConfig"][field]


def _cfg(field: str) -> Callable[[Probe], bool]:
    return lambda p: p.inspect()["Config"][field] == SAMPLES["Config"][field]


def _healthy(p: Probe) -> bool:
    """The probe runs (every second here) and turns the container healthy."""
    p.start()
    for _ in range(100):
        if (p.inspect()["State"].get("Health") or {}).get("Status") == "healthy":
            return True
        time.sleep(0.1)
    return False


def _cgroup(controller: str, file: str, expected: str) -> Callable[[Probe], bool]:
    """A control file of the container's own cgroup, as the container sees it."""
    return lambda p: p.sh(f"cat /sys/fs/cgroup/{controller}/{file}").strip() == expected


def _host_limits(fact: str, check: Callable[[Probe], bool],
                 field: str) -> Callable[[Probe], bool]:
    """`check` where this kernel can apply the field; else dockerd's discard (its warning:
    test_limits_vs_docker.py), seen in inspect."""
    if getattr(cgroups.host_facts(), fact):
        return check
    return lambda p: p.inspect()["HostConfig"][field] in (0, None, [])


def _throttle(file: str, rate: int) -> Callable[[Probe], bool]:
    return _cgroup("blkio", f"blkio.throttle.{file}", f"{BLOCK_NUMBER} {rate}")


def _rt_runtime(p: Probe) -> bool:
    """runc writes cpu.rt_runtime_us and the kernel refuses a runtime the parent cgroup was
    given none of: the start fails with 500 as under Docker 20.10 (without its --cpu-rt-runtime)."""
    status, body = p.daemon.api("POST", f"/containers/{p.cid}/start")
    return status == 500 and "cpu.rt_runtime_us: invalid argument" in body["message"]


def _stops_after_stop_timeout(p: Probe) -> bool:
    """`sleep` as PID 1 ignores SIGTERM: stop without ?t= kills it after StopTimeout (3 s), not
    after the default 10 s."""
    p.start()
    began = time.monotonic()
    status, _ = p.daemon.api("POST", f"/containers/{p.cid}/stop")
    return status == 204 and 2.5 <= time.monotonic() - began < 9


def _caps(p: Probe) -> list[str]:
    return p.oci()["process"]["capabilities"]["bounding"]


def _conmon_args(p: Probe) -> list[str]:
    """The command line of the container's conmon (the log writer)."""
    p.start()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "conmon" in args[0] and p.cid in args:
            return args
    return []


def _mac(p: Probe) -> str:
    return p.sh("cat /sys/class/net/eth0/address").strip()


# how each applied field is seen to take effect
APPLIED_CHECKS: dict[str, Callable[[Probe], bool]] = {
    "HostConfig.Binds": lambda p: any(m["destination"] == "/walk-bind" and "ro" in m["options"]
                                      for m in p.oci()["mounts"]),
    "HostConfig.ContainerIDFile": _hc("ContainerIDFile"),  # the client writes the file
    # max-size with one file: conmon's own limit (rotation over files: test_process_options*)
    "HostConfig.LogConfig": lambda p: "--log-size-max=1000000" in _conmon_args(p),
    "HostConfig.NetworkMode": lambda p: "eth0" in p.sh("ip -o link"),
    "HostConfig.PortBindings": lambda p: (p.start(), p.inspect()["NetworkSettings"]["Ports"]
                                          ["80/tcp"][0]["HostPort"] == "18080")[1],
    "HostConfig.RestartPolicy": _hc("RestartPolicy"),  # restarts: test_lifecycle.py
    "HostConfig.AutoRemove": _hc("AutoRemove"),  # removal at exit: test_lifecycle.py
    "HostConfig.VolumesFrom": lambda p: any(m["Destination"] == "/walk-src-vol"
                                            for m in p.inspect()["Mounts"]),
    "HostConfig.CapAdd": lambda p: "CAP_NET_ADMIN" in _caps(p),
    "HostConfig.CapDrop": lambda p: "CAP_CHOWN" not in _caps(p),
    "HostConfig.Dns": lambda p: "nameserver 192.0.2.53" in p.sh("cat /etc/resolv.conf"),
    "HostConfig.DnsOptions": lambda p: "options ndots:3" in p.sh("cat /etc/resolv.conf"),
    "HostConfig.DnsSearch": lambda p: "search walk.example" in p.sh("cat /etc/resolv.conf"),
    "HostConfig.ExtraHosts": lambda p: "192.0.2.9\twalkhost" in p.sh("cat /etc/hosts"),
    "HostConfig.Links": lambda p: "src" in p.sh("cat /etc/hosts"),
    "HostConfig.Privileged": lambda p: p.oci()["linux"]["maskedPaths"] == [],
    "HostConfig.PublishAllPorts": lambda p: (p.start(), int(p.inspect()["NetworkSettings"]
                                             ["Ports"]["7071/tcp"][0]["HostPort"]) > 0)[1],
    "HostConfig.ReadonlyRootfs": lambda p: p.oci()["root"]["readonly"] is True,
    "HostConfig.SecurityOpt": lambda p: p.oci()["process"]["noNewPrivileges"] is True,
    "HostConfig.Tmpfs": lambda p: "/walk-tmp" in p.sh("cat /proc/mounts"),
    "HostConfig.ConsoleSize": lambda p: p.oci()["process"]["consoleSize"]
    == {"height": 30, "width": 100},
    "HostConfig.Mounts": lambda p: "/walk-mount" in p.sh("cat /proc/mounts"),
    "HostConfig.MaskedPaths": lambda p: p.oci()["linux"]["maskedPaths"] == ["/proc/walk"],
    "HostConfig.ReadonlyPaths": lambda p: p.oci()["linux"]["readonlyPaths"] == ["/proc/sys"],
    "HostConfig.GroupAdd": lambda p: "1000" in p.sh("id -G").split(),
    "HostConfig.IpcMode": lambda p: p.sh("readlink /proc/1/ns/ipc").strip()
    == os.readlink("/proc/self/ns/ipc"),  # the host's
    # the host's PID and UTS namespaces (their `container:` modes: test_shared_ns_vs_docker.py)
    "HostConfig.PidMode": lambda p: p.sh("readlink /proc/self/ns/pid").strip()
    == os.readlink("/proc/self/ns/pid"),
    "HostConfig.UTSMode": lambda p: p.sh("hostname").strip() == socket.gethostname(),
    # no volume here for it to name the driver of: test_volume_driver_vs_docker checks those
    "HostConfig.VolumeDriver": lambda p: p.inspect()["HostConfig"]["VolumeDriver"] == "other",
    "HostConfig.CgroupnsMode": lambda p: all(
        line.endswith(":/") for line in p.sh("cat /proc/self/cgroup").splitlines()),
    "HostConfig.OomScoreAdj": lambda p: p.sh("cat /proc/1/oom_score_adj").strip() == "100",
    "HostConfig.ShmSize": lambda p: "size=8192k" in p.sh("grep ' /dev/shm ' /proc/mounts"),
    "HostConfig.Sysctls": lambda p: p.oci()["linux"]["sysctl"]["net.ipv4.ip_forward"] == "1"
    and p.sh("cat /proc/sys/net/ipv4/ip_forward").strip() == "1",
    "HostConfig.Devices": lambda p: p.sh("test -c /dev/walk && echo x >/dev/walk && echo ok")
    .strip() == "ok",
    "HostConfig.DeviceCgroupRules": lambda p: {"allow": True, "type": "c", "major": 1,
                                               "minor": 3, "access": "r"}
    in p.oci()["linux"]["resources"]["devices"],
    "HostConfig.Ulimits": lambda p: p.sh("ulimit -n; ulimit -Hn").split() == ["100", "200"],
    "HostConfig.Init": lambda p: p.sh("tr '\\0' ' ' </proc/1/cmdline")
    .startswith("/sbin/docker-init -- sleep 61"),
    "Config.MacAddress": lambda p: _mac(p) == "02:42:ac:11:00:99",
    "EndpointSettings.MacAddress": lambda p: _mac(p) == "02:42:ac:11:00:98",
    "Config.Hostname": lambda p: p.sh("hostname").strip() == "walkhost",
    "Config.Domainname": lambda p: p.sh("cat /proc/sys/kernel/domainname").strip()
    == "walk.example",
    "Config.User": lambda p: p.oci()["process"]["user"]["uid"] == 65534,
    "Config.AttachStdin": _cfg("AttachStdin"),  # what the client attaches: test_sdk*.py
    "Config.AttachStdout": _cfg("AttachStdout"),
    "Config.AttachStderr": _cfg("AttachStderr"),
    "Config.ExposedPorts": lambda p: "7070/tcp" in p.inspect()["Config"]["ExposedPorts"],
    "Config.Tty": lambda p: p.oci()["process"]["terminal"] is True,
    "Config.OpenStdin": _cfg("OpenStdin"),  # stdin kept open: test_docker_it.py
    "Config.StdinOnce": _cfg("StdinOnce"),
    "Config.Env": lambda p: "WALK=1" in p.oci()["process"]["env"],
    "Config.Cmd": lambda p: p.oci()["process"]["args"][-2:] == ["sleep", "61"],
    "Config.Healthcheck": _healthy,
    "Config.ArgsEscaped": _cfg("ArgsEscaped"),  # Windows only, as dockerd
    "Config.Image": lambda p: p.inspect()["Config"]["Image"] == "busybox",
    "Config.Volumes": lambda p: any(m["Destination"] == "/walk-vol"
                                    for m in p.inspect()["Mounts"]),
    "Config.WorkingDir": lambda p: p.oci()["process"]["cwd"] == "/walk-wd",
    "Config.Entrypoint": lambda p: p.oci()["process"]["args"][0] == "/bin/sh",
    "Config.OnBuild": _cfg("OnBuild"),  # kept for commit, as dockerd
    "Config.Labels": lambda p: p.inspect()["Config"]["Labels"]["walk"] == "yes",
    "Config.StopTimeout": _stops_after_stop_timeout,
    "Config.StopSignal": _cfg("StopSignal"),  # stop's signal: test_lifecycle.py
    "Config.Shell": _cfg("Shell"),  # kept for commit, as dockerd
    "HostConfig.Runtime": _hc("Runtime"),
    "HostConfig.CpuShares": _cgroup("cpu", "cpu.shares", "512"),
    "HostConfig.Memory": _cgroup("memory", "memory.limit_in_bytes", str(64 << 20)),
    "HostConfig.NanoCpus": _cgroup("cpu", "cpu.cfs_quota_us", "50000"),
    "HostConfig.CgroupParent": lambda p: f"/tether-walk-parent/{p.cid}" in
    p.sh("cat /proc/self/cgroup"),
    "HostConfig.BlkioWeight": _host_limits(
        "blkio_weight", _cgroup("blkio", "blkio.weight", "300"), "BlkioWeight"),
    "HostConfig.BlkioWeightDevice": _host_limits(
        "blkio_weight_device", _cgroup("blkio", "blkio.weight_device", f"{BLOCK_NUMBER} 300"),
        "BlkioWeightDevice"),
    "HostConfig.BlkioDeviceReadBps": _throttle("read_bps_device", 1024),
    "HostConfig.BlkioDeviceWriteBps": _throttle("write_bps_device", 1024),
    "HostConfig.BlkioDeviceReadIOps": _throttle("read_iops_device", 10),
    "HostConfig.BlkioDeviceWriteIOps": _throttle("write_iops_device", 10),
    "HostConfig.CpuPeriod": _cgroup("cpu", "cpu.cfs_period_us", "100000"),
    "HostConfig.CpuQuota": _cgroup("cpu", "cpu.cfs_quota_us", "50000"),
    "HostConfig.CpuRealtimePeriod": _cgroup("cpu", "cpu.rt_period_us", "1000"),
    "HostConfig.CpuRealtimeRuntime": _rt_runtime,
    "HostConfig.CpusetCpus": _cgroup("cpuset", "cpuset.cpus", "0"),
    "HostConfig.CpusetMems": _cgroup("cpuset", "cpuset.mems", "0"),
    "HostConfig.KernelMemory": _host_limits(
        "kernel_memory", _cgroup("memory", "memory.kmem.limit_in_bytes", str(64 << 20)),
        "KernelMemory"),
    "HostConfig.KernelMemoryTCP": _cgroup("memory", "memory.kmem.tcp.limit_in_bytes",
                                          str(64 << 20)),
    "HostConfig.MemoryReservation": _cgroup("memory", "memory.soft_limit_in_bytes",
                                            str(32 << 20)),
    "HostConfig.MemorySwap": _cgroup("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
    "HostConfig.MemorySwappiness": _cgroup("memory", "memory.swappiness", "10"),
    "HostConfig.OomKillDisable": lambda p: "oom_kill_disable 1" in
    p.sh("cat /sys/fs/cgroup/memory/memory.oom_control"),
    "HostConfig.PidsLimit": _cgroup("pids", "pids.max", "20"),
    # Windows only: dockerd on Linux discards it with a warning at create, as tether
    "HostConfig.CpuPercent": lambda p: p.inspect()["HostConfig"]["CpuPercent"] == 0,  # runc; dockerd itself refuses any other name
    "EndpointSettings.IPAMConfig": lambda p: "10.99.0.99" in p.sh("ip -4 -o addr"),
    "EndpointSettings.Links": lambda p: "walk-src:src2" in
    p.inspect()["NetworkSettings"]["Networks"]["walknet"]["Links"],
    "EndpointSettings.Aliases": lambda p: "walkalias" in
    p.inspect()["NetworkSettings"]["Networks"]["walknet"]["Aliases"],
}
# operational EndpointSettings fields: dockerd ignores them in a request, and so does tether
for _name in ("NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway",
              "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DNSNames"):
    APPLIED_CHECKS[f"EndpointSettings.{_name}"] = \
        lambda p: p.sh("ip -4 -o addr").count("192.0.2.2") == 0


def _fields() -> list[tuple[str, str]]:
    return [(struct, name) for struct, go in GO_STRUCTS.items() for name in go.fields]


def test_every_field_has_a_sample_and_a_rule():
    for struct, name in _fields():
        assert name in SAMPLES[struct], f"{struct}.{name} has no sample"
        assert name in support.TABLES[struct][1], f"{struct}.{name} is not in spec/support.py"
        assert _refused(struct, name) or APPLIED_CHECKS.get(f"{struct}.{name}"), \
            f"{struct}.{name} is applied but nothing checks it"


@pytest.fixture(scope="module")
def source(daemon):
    """The container --volumes-from and --link name, and the user network of the endpoint
    settings."""
    status, body = daemon.api("POST", "/networks/create", {
        "Name": "walknet", "IPAM": {"Config": [{"Subnet": "10.99.0.0/24"}]}})
    assert status == 201, body
    status, body = daemon.api("POST", "/containers/create?name=walk-src", {
        "Image": "busybox", "Cmd": ["sleep", "300"], "Volumes": {"/walk-src-vol": {}}})
    assert status == 201, body
    assert daemon.api("POST", "/containers/walk-src/start")[0] == 204
    yield
    daemon.api("DELETE", "/containers/walk-src?force=1&v=1")
    daemon.api("DELETE", "/networks/walknet")


@pytest.mark.parametrize("struct,field", _fields())
def test_field_is_applied_or_refused(daemon, source, struct, field):
    before = {c["Id"] for c in daemon.api("GET", "/containers/json?all=1")[1]}
    status, body = daemon.api("POST", "/containers/create", _body(struct, field))
    if _refused(struct, field):
        wanted = 500 if f"{struct}.{field}" in DOCKERD_REFUSALS else 400
        assert (status, body) == (wanted, {"message": _refusal(struct, field)})
        assert {c["Id"] for c in daemon.api("GET", "/containers/json?all=1")[1]} == before
        return
    assert status == 201, body
    probe = Probe(daemon, body["Id"])
    try:
        assert APPLIED_CHECKS[f"{struct}.{field}"](probe), f"{struct}.{field} not applied"
    finally:
        daemon.api("DELETE", f"/containers/{body['Id']}?force=1&v=1")
        if field == "CgroupParent":  # runc leaves the parent it made at each hierarchy's root
            for parent in Path("/sys/fs/cgroup").glob("*/tether-walk-parent"):
                parent.rmdir()


# refused by dockerd's own create check before tether's table is read, in dockerd's words and
# with its 500 (it refuses them as it decodes the body, with errors of no kind)
DOCKERD_REFUSALS = {
    "HostConfig.IOMaximumBandwidth": "Invalid QoS settings: linux does not support "
                                     "configuration of maximum bandwidth",
    "HostConfig.IOMaximumIOps": "Invalid QoS settings: linux does not support configuration "
                                "of maximum IOPs",
}


# refused with the part of the sample they do not apply named after the field (a map's key)
REFUSED_PARTS = {"EndpointSettings.DriverOpts": ".com.example"}


def _refusal(struct: str, field: str) -> str:
    """The refusal's text: dockerd's own where it refuses first, else tether's naming the field."""
    named = f"{struct}.{field}"
    return DOCKERD_REFUSALS.get(named,
                                f"tether does not support {named}{REFUSED_PARTS.get(named, '')} yet")


# ---- docker-py's create tests (tests/integration/api_container_test.py, 7.1.0) -------------------

def test_create_with_runtime(daemon):
    client = daemon.sdk().api
    container = client.create_container("busybox", ["echo", "test"], runtime="runc")
    try:
        assert client.inspect_container(container)["HostConfig"]["Runtime"] == "runc"
    finally:
        client.remove_container(container, force=True)


def test_valid_no_log_driver_specified(daemon):
    import docker
    client = daemon.sdk().api
    log_config = docker.types.LogConfig(type="", config={"max-file": "100"})
    container = client.create_container(
        "busybox", ["true"], host_config=client.create_host_config(log_config=log_config))
    try:
        client.start(container)
        info = client.inspect_container(container)["HostConfig"]["LogConfig"]
        assert info == {"Type": "json-file", "Config": {"max-file": "100"}}
    finally:
        client.remove_container(container, force=True)


def test_invalid_log_driver_raises_exception(daemon):
    """docker-py expects an APIError; its text is Docker 20.10's at create (a plugin lookup:
    docker-py's own expected text is that of a dockerd without a plugin store)."""
    import docker
    client = daemon.sdk().api
    log_config = docker.types.LogConfig(type="asdf-nope", config={})
    before = client.containers(all=True)
    with pytest.raises(docker.errors.APIError) as excinfo:
        container = client.create_container(
            "busybox", ["true"], host_config=client.create_host_config(log_config=log_config))
        client.start(container)
    assert excinfo.value.status_code == 400
    assert excinfo.value.explanation == \
        'error looking up logging plugin asdf-nope: plugin "asdf-nope" not found'
    assert client.containers(all=True) == before
