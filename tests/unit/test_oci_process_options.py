"""The compiler's process options (runtime/oci.py): what Ulimits, OomScoreAdj, GroupAdd, Init,
ShmSize and IpcMode, Sysctls, Devices and DeviceCgroupRules become in config.json, from the
typed spec and the parts the engine resolves (engine/process_config.py)."""
from __future__ import annotations

import pytest

from tether.rules.errors import ApiError
from tether.runtime import oci
from tether.spec.types import Config, HostConfig, Resources


def compiled(host_config: HostConfig, **parts) -> dict:
    return oci.compile_spec(Config(), host_config, oci.Parts(
        rootfs="/r", args=["sh", "-c", "x"], env=[], cwd="/", uid=0, gid=0, additional_gids=[10],
        netns_path="/run/n", mounts=[], cgroups_path="/tether/x", **parts))


def shm(spec: dict) -> list[dict]:
    return [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]


def test_defaults_add_nothing() -> None:
    spec = compiled(HostConfig())
    assert "rlimits" not in spec["process"] and spec["process"]["oomScoreAdj"] == 0
    assert spec["process"]["args"] == ["sh", "-c", "x"]
    assert spec["linux"]["devices"] == [] and spec["linux"]["resources"]["devices"] == \
        oci.device_rules()
    assert shm(spec)[0]["options"][-1] == "size=67108864"


def test_process_fields() -> None:
    limit = {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}
    spec = compiled(HostConfig(oom_score_adj=-500), rlimits=[limit], group_add_gids=[10, 7],
                    init_path="/usr/bin/tini-static")
    process = spec["process"]
    assert (process["rlimits"], process["oomScoreAdj"]) == ([limit], -500)
    assert process["user"]["additionalGids"] == [10, 7]  # the user's first, no repeat
    assert process["args"] == ["/sbin/docker-init", "--", "sh", "-c", "x"]
    assert spec["mounts"][-1] == {"destination": "/sbin/docker-init", "type": "bind",
                                  "source": "/usr/bin/tini-static", "options": ["bind", "ro"]}


def test_ipc_modes_and_shm_size() -> None:
    assert shm(compiled(HostConfig(shm_size=1 << 20)))[0]["options"][-1] == "size=1048576"
    assert shm(compiled(HostConfig(ipc_mode="none"))) == []
    host = compiled(HostConfig(ipc_mode="host", shm_size=1 << 20))
    assert shm(host) == [{"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                          "options": ["rbind", "rprivate"]}]
    assert "ipc" not in [ns["type"] for ns in host["linux"]["namespaces"]]
    assert "ipc" in [ns["type"] for ns in compiled(HostConfig())["linux"]["namespaces"]]


def test_sysctls_over_the_defaults_and_host_ipc_refusal() -> None:
    spec = compiled(HostConfig(sysctls={"net.ipv4.ping_group_range": "0 0", "kernel.sem": "1"}))
    assert spec["linux"]["sysctl"]["net.ipv4.ping_group_range"] == "0 0"
    assert spec["linux"]["sysctl"]["kernel.sem"] == "1"
    with pytest.raises(ApiError) as info:
        compiled(HostConfig(ipc_mode="host", sysctls={"kernel.sem": "1"}))
    assert info.value.status == 500


def test_devices_and_cgroup_rules() -> None:
    node = {"path": "/dev/walk", "type": "c", "major": 1, "minor": 3}
    allow = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    spec = compiled(HostConfig(resources=Resources(device_cgroup_rules=["b 8:* r"])),
                    devices=[node], device_allow=[allow])
    assert spec["linux"]["devices"] == [node]
    assert spec["linux"]["resources"]["devices"] == [
        *oci.device_rules(), allow, {"allow": True, "type": "b", "major": 8, "access": "r"}]
    with pytest.raises(ApiError):
        compiled(HostConfig(resources=Resources(device_cgroup_rules=["bad"])))


def test_host_pid_mode_has_no_pid_namespace() -> None:
    kinds = [ns["type"] for ns in compiled(HostConfig(pid_mode="host"))["linux"]["namespaces"]]
    assert "pid" not in kinds and "ipc" in kinds
    assert "pid" in [ns["type"] for ns in compiled(HostConfig())["linux"]["namespaces"]]


def test_private_cgroupns_mode_adds_a_cgroup_namespace() -> None:
    spec = compiled(HostConfig(cgroupns_mode="private"))
    kinds = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert "cgroup" in kinds
    for mode in ("", "host"):
        spec = compiled(HostConfig(cgroupns_mode=mode))
        assert "cgroup" not in [ns["type"] for ns in spec["linux"]["namespaces"]]
