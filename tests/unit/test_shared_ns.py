"""Namespaces joined from other containers (engine/shared_ns.py) and how the compiler writes
them (runtime/oci.namespaces): dockerd's create-time conflicts, its errors for a donor that is
missing, stopped or not shareable, and the donor's /proc/<pid>/ns files as namespace paths."""
from __future__ import annotations

import pytest

from tether.engine import shared_ns
from tether.engine.records import Container
from tether.rules import resources as resource_rules
from tether.rules.errors import ApiError, NotFound
from tether.runtime import oci
from tether.spec import create
from tether.spec.types import Config, HostConfig

DONOR = "d" * 64


def container(cid: str, host_config: HostConfig, running: bool = True) -> Container:
    c = Container(id=cid, name=f"/{cid[:3]}", created="", image_id="", config=Config(
        hostname=cid[:12]), host_config=host_config, path="sleep", args=["9"])
    if running:
        c.state.status, c.state.pid = "running", 42
    return c


def registry(*known: Container):
    def get(ref: str) -> Container:
        for c in known:
            if ref in (c.id, c.name.lstrip("/")):
                return c
        raise NotFound(f"No such container: {ref}")
    return get


@pytest.mark.parametrize("config,host_config,text", [
    (Config(hostname="h"), HostConfig(), "conflicting options: hostname and the network mode"),
    (Config(), HostConfig(dns=["192.0.2.1"]), "conflicting options: dns and the network mode"),
    (Config(), HostConfig(publish_all_ports=True),
     "conflicting options: port publishing and the container type network mode"),
    (Config(exposed_ports={"80/tcp": {}}), HostConfig(),
     "conflicting options: port exposing and the container type network mode"),
])
def test_network_member_conflicts(config, host_config, text) -> None:
    host_config.network_mode = "container:x"
    with pytest.raises(ApiError) as err:
        shared_ns.check_at_create(config, host_config, registry())
    assert (err.value.status, err.value.message) == (400, text)


def test_a_hostname_conflicts_with_the_hosts_uts_namespace_before_any_donor_check() -> None:
    # spec/create.validate runs first at create (engine/creation.py), so its UTS text wins over
    # a network member's own hostname conflict
    with pytest.raises(ApiError) as err:
        create.validate(Config(hostname="h"),
                        HostConfig(uts_mode="host", network_mode="container:x"),
                        resource_rules.HostFacts(ncpu=2, cpus="0-1", kernel_memory=False,
                                                 cpu_realtime=True))
    assert err.value.message == "conflicting options: hostname and the UTS mode"


def test_ipc_and_pid_donors_must_exist_at_create_but_network_ones_at_start() -> None:
    shared_ns.check_at_create(Config(), HostConfig(network_mode="container:nope"), registry())
    for hc in (HostConfig(ipc_mode="container:nope"), HostConfig(pid_mode="container:nope")):
        with pytest.raises(ApiError) as err:
            shared_ns.check_at_create(Config(), hc, registry())
        assert (err.value.status, err.value.message) == (400, "No such container: nope")


def test_a_start_joins_the_donors_namespaces() -> None:
    donor = container(DONOR, HostConfig(ipc_mode="shareable"))
    member = container("m" * 64, HostConfig(network_mode="container:ddd", ipc_mode="container:ddd",
                                            pid_mode="container:ddd"))
    assert shared_ns.namespace_paths(member, registry(donor)) == {
        "network": "/proc/42/ns/net", "ipc": "/proc/42/ns/ipc", "pid": "/proc/42/ns/pid"}
    assert member.host_config.network_mode == f"container:{DONOR}"
    assert member.config.hostname == DONOR[:12] and shared_ns.files_owner(member) == DONOR


@pytest.mark.parametrize("host_config,running,status,text", [
    (HostConfig(network_mode="container:ddd"), False, 409,
     f"cannot join network of a non running container: {DONOR}"),
    (HostConfig(ipc_mode="container:ddd"), False, 409,
     f"can't join IPC of container {DONOR}: container {DONOR} is not running"),
    (HostConfig(ipc_mode="container:ddd"), True, 400,
     f"can't join IPC of container {DONOR}: non-shareable IPC (hint: use IpcMode:shareable for "
     "the donor container)"),
    (HostConfig(pid_mode="container:ddd"), False, 409, f"container {DONOR} is not running"),
])
def test_donor_errors_at_start(host_config, running, status, text) -> None:
    donor = container(DONOR, HostConfig(ipc_mode="private"), running)
    with pytest.raises(ApiError) as err:
        shared_ns.namespace_paths(container("m" * 64, host_config), registry(donor))
    assert (err.value.status, err.value.message) == (status, text)


def compiled(host_config: HostConfig, joined: dict[str, str]) -> dict:
    return oci.compile_spec(Config(hostname="h"), host_config, oci.Parts(
        rootfs="/r", args=["true"], env=[], cwd="/", uid=0, gid=0, additional_gids=[],
        netns_path=joined.get("network", "/run/n"), mounts=[], cgroups_path="/t/x",
        joined=joined))


def test_compiled_namespaces() -> None:
    spec = compiled(HostConfig(pid_mode="host", uts_mode="host"), {"ipc": "/proc/42/ns/ipc"})
    assert spec["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network", "path": "/run/n"},
        {"type": "ipc", "path": "/proc/42/ns/ipc"}]
    assert spec["hostname"] == ""  # the host's UTS namespace keeps its name
    spec = compiled(HostConfig(), {"network": "/proc/42/ns/net", "pid": "/proc/42/ns/pid"})
    assert spec["linux"]["namespaces"] == [
        {"type": "mount"}, {"type": "network", "path": "/proc/42/ns/net"}, {"type": "uts"},
        {"type": "pid", "path": "/proc/42/ns/pid"}, {"type": "ipc"}]


def test_a_member_gets_no_net_sysctls_of_its_own() -> None:
    spec = compiled(HostConfig(network_mode=f"container:{DONOR}"), {"network": "/proc/42/ns/net"})
    assert not any(k.startswith("net.") for k in spec["linux"]["sysctl"])
