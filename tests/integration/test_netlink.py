"""The netlink driver against the real kernel.

Everything happens in namespaces the test makes: a "host" namespace (named, under /run/netns)
plays the daemon's, entered by a thread, and container namespaces are files made by
tether.network.netns. The test process's own namespace must come out untouched.
"""
from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import TypeVar

import pytest

from tether.network import netlink, netns
from tether.network.ipam import IPAM, choose_subnet, mac_address

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

T = TypeVar("T")
BRIDGE = "tether0"
GATEWAY = IPv4Interface("172.17.0.1/16")


class Host:
    """A named namespace standing in for the daemon's, and ways to act inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"/run/netns/{name}"

    def run(self, work: Callable[[], T]) -> T:
        """Call `work` from a thread inside this namespace (as the daemon would call the driver)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return netlink._in_netns(fd, work)
        finally:
            os.close(fd)

    def sh(self, *argv: str) -> str:
        return _nsenter(self.path, *argv)

    def links(self) -> set[str]:
        return _link_names(self.path)


def _nsenter(path: str, *argv: str, check: bool = True) -> str:
    done = subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True,
                          timeout=20)
    if check and done.returncode != 0:
        raise AssertionError(f"{argv}: {done.returncode} {done.stdout}{done.stderr}")
    return done.stdout


def _link_names(path: str) -> set[str]:
    out = _nsenter(path, "ip", "-o", "link", "show")
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _mac(path: str, ifname: str) -> str:
    return _nsenter(path, "ip", "-o", "link", "show", ifname).split("link/ether ")[1].split()[0]


def _ping(ns_path: str, address: str) -> bool:
    done = subprocess.run(["nsenter", f"--net={ns_path}", "busybox", "ping", "-c", "1", "-W", "2",
                           address], capture_output=True, timeout=20)
    return done.returncode == 0


def _own_netns_snapshot() -> tuple[set[str], str, str]:
    """The test process's own namespace: its links and the sysctls the driver writes."""
    return (_link_names("/proc/self/ns/net"), Path("/proc/sys/net/ipv4/ip_forward").read_text(),
            Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text())


@pytest.fixture(autouse=True)
def own_netns_untouched() -> Iterator[None]:
    before = _own_netns_snapshot()
    yield
    assert _own_netns_snapshot() == before  # its links too: a bridge made here would show


@pytest.fixture
def host() -> Iterator[Host]:
    name = f"tether-t-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield Host(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.fixture
def make_container(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Container namespaces as netns files outside /run/netns, removed after the test."""
    made: list[Path] = []

    def make() -> str:
        path = tmp_path / f"ns{len(made)}"
        netns.create(path)
        made.append(path)
        return str(path)

    try:
        yield make
    finally:
        for path in made:
            netns.remove(path)


@pytest.fixture
def bridge(host: Host) -> Host:
    host.run(lambda: netlink.ensure_bridge(BRIDGE, GATEWAY))
    return host


def _connect(host: Host, ns: str, ipam: IPAM, ifname: str) -> IPv4Address:
    ip = ipam.allocate()
    host.run(lambda: netlink.connect(ns, BRIDGE, ifname, IPv4Interface(f"{ip}/16"), GATEWAY.ip,
                                     mac_address(ip)))
    return ip


def test_ensure_bridge_is_idempotent_and_sets_sysctls_in_its_namespace(bridge: Host):
    first = bridge.sh("ip", "-o", "link", "show", BRIDGE)
    bridge.run(lambda: netlink.ensure_bridge(BRIDGE, GATEWAY))
    assert bridge.sh("ip", "-o", "link", "show", BRIDGE) == first  # same device, same MAC
    assert _mac(bridge.path, BRIDGE).startswith("02:42:")
    assert ",UP" in first
    addrs = bridge.sh("ip", "-o", "-4", "addr", "show", "dev", BRIDGE)
    assert addrs.count("inet ") == 1
    assert "inet 172.17.0.1/16 brd 172.17.255.255" in addrs
    assert bridge.sh("cat", f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet",
                     "/proc/sys/net/ipv4/ip_forward") == "1\n1\n"


def test_ensure_bridge_replaces_an_old_address(bridge: Host):
    bridge.run(lambda: netlink.ensure_bridge(BRIDGE, IPv4Interface("172.20.0.1/16")))
    addrs = bridge.sh("ip", "-o", "-4", "addr", "show", "dev", BRIDGE)
    assert addrs.count("inet ") == 1
    assert "inet 172.20.0.1/16 brd 172.20.255.255" in addrs


def test_ensure_bridge_refuses_a_device_that_is_not_a_bridge(host: Host):
    host.sh("ip", "link", "add", BRIDGE, "type", "veth", "peer", "name", "other")
    with pytest.raises(OSError, match="not a bridge"):
        host.run(lambda: netlink.ensure_bridge(BRIDGE, GATEWAY))


def test_delete_bridge_is_idempotent(bridge: Host):
    bridge.run(lambda: netlink.delete_bridge(BRIDGE))
    assert BRIDGE not in bridge.links()
    bridge.run(lambda: netlink.delete_bridge(BRIDGE))


def test_addresses_in_use_sees_the_bridge_and_can_leave_it_out(bridge: Host):
    bridge.sh("ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-peer")
    bridge.sh("ip", "addr", "add", "172.18.3.4/24", "dev", "uplink")
    bridge.sh("ip", "link", "set", "uplink", "up")
    bridge.sh("ip", "link", "set", "uplink-peer", "up")
    bridge.sh("ip", "route", "add", "172.19.0.0/20", "dev", "uplink")
    bridge.sh("ip", "route", "add", "default", "via", "172.18.3.1")
    used = bridge.run(netlink.addresses_in_use)
    for net in ("172.17.0.0/16", "172.18.3.0/24", "172.19.0.0/20"):
        assert IPv4Network(net) in used
    assert IPv4Network("0.0.0.0/0") not in used
    assert len(used) == len(set(used))
    assert choose_subnet(used)[0] == IPv4Network("172.20.0.0/16")
    # A restarted daemon leaving its own bridge out finds the same subnet again.
    own_left_out = bridge.run(lambda: netlink.addresses_in_use(exclude_ifname=BRIDGE))
    assert IPv4Network("172.17.0.0/16") not in own_left_out
    assert choose_subnet(own_left_out) == (IPv4Network("172.17.0.0/16"), GATEWAY.ip)


def test_connect_two_containers_that_reach_each_other_and_the_gateway(
        bridge: Host, make_container: Callable[[], str]):
    ipam = IPAM(GATEWAY.network, GATEWAY.ip)
    c1, c2 = make_container(), make_container()
    bridge_mac = _mac(bridge.path, BRIDGE)
    ip1 = _connect(bridge, c1, ipam, "vethaaaaaaaaaaa")
    ip2 = _connect(bridge, c2, ipam, "vethbbbbbbbbbbb")
    assert (str(ip1), str(ip2)) == ("172.17.0.2", "172.17.0.3")
    assert _mac(bridge.path, BRIDGE) == bridge_mac  # ports do not change the gateway's MAC

    eth0 = _nsenter(c1, "ip", "addr", "show", "eth0")
    assert "link/ether 02:42:ac:11:00:02" in eth0
    assert "inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0" in eth0
    assert "inet6" not in eth0  # IPv6 off, as in Docker's containers on the default bridge
    assert ",UP" in eth0 and "qlen" not in eth0
    assert _nsenter(c1, "ip", "route").splitlines()[0] == "default via 172.17.0.1 dev eth0 "
    assert _link_names(c1) == {"lo", "eth0"}

    port = bridge.sh("ip", "-d", "link", "show", "vethaaaaaaaaaaa")
    assert f"master {BRIDGE}" in port and "state UP" in port and "hairpin on" in port
    assert "qlen" not in port

    assert _ping(c1, str(ip2))
    assert _ping(c2, str(ip1))
    assert _ping(c1, "172.17.0.1")
    assert _ping(bridge.path, str(ip2))


def test_disconnect_removes_the_pair_and_tolerates_it_gone(
        bridge: Host, make_container: Callable[[], str]):
    ipam = IPAM(GATEWAY.network, GATEWAY.ip)
    c1, c2 = make_container(), make_container()
    _connect(bridge, c1, ipam, "veth1")
    ip2 = _connect(bridge, c2, ipam, "veth2")
    bridge.run(lambda: netlink.disconnect("veth1"))
    assert "veth1" not in bridge.links()
    assert _link_names(c1) == {"lo"}
    assert not _ping(c1, str(ip2))
    bridge.run(lambda: netlink.disconnect("veth1"))


def test_removing_the_namespace_removes_the_pair(bridge: Host, tmp_path: Path):
    ns = tmp_path / "gone"
    netns.create(ns)
    try:
        _connect(bridge, str(ns), IPAM(GATEWAY.network, GATEWAY.ip), "vethgone")
    finally:
        netns.remove(ns)
    deadline = time.monotonic() + 5
    while "vethgone" in bridge.links() and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel tears a namespace down asynchronously
    assert "vethgone" not in bridge.links()
    bridge.run(lambda: netlink.disconnect("vethgone"))


def test_a_failed_connect_leaves_nothing_behind(bridge: Host, make_container: Callable[[], str]):
    ns = make_container()
    with pytest.raises(OSError, match="Network is unreachable"):  # gateway outside the subnet
        bridge.run(lambda: netlink.connect(ns, BRIDGE, "vethfail", IPv4Interface("172.17.0.2/16"),
                                           IPv4Address("10.9.9.9"), "02:42:ac:11:00:02"))
    assert "vethfail" not in bridge.links()
    assert _link_names(ns) == {"lo"}


def test_connect_refuses_bad_names_and_a_missing_bridge(host: Host,
                                                         make_container: Callable[[], str]):
    ns = make_container()
    with pytest.raises(ValueError):
        netlink.connect(ns, BRIDGE, "veth0123456789ab", IPv4Interface("172.17.0.2/16"),
                        GATEWAY.ip, "02:42:ac:11:00:02")
    with pytest.raises(OSError, match="does not exist"):
        host.run(lambda: netlink.connect(ns, BRIDGE, "vethx", IPv4Interface("172.17.0.2/16"),
                                         GATEWAY.ip, "02:42:ac:11:00:02"))
    assert _link_names(ns) == {"lo"}


def test_connect_is_fast(bridge: Host, make_container: Callable[[], str],
                         record_property: Callable[[str, object], None]):
    ipam = IPAM(GATEWAY.network, GATEWAY.ip)
    timings = []
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    for i in range(20):
        ns = make_container()
        start = time.perf_counter()
        _connect(bridge, ns, ipam, f"vethfast{i}")
        timings.append((time.perf_counter() - start) * 1000)
    median, worst = statistics.median(timings), max(timings)
    record_property("connect_ms", {"median": round(median, 2), "max": round(worst, 2)})
    print(f"connect(): median {median:.2f} ms, max {worst:.2f} ms over {len(timings)}")
    assert median < 30
    # A long-running daemon calls this for every container start: nothing may pile up.
    bridge.run(lambda: [netlink.disconnect(f"vethfast{i}") for i in range(20)])
    assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == (fds, threads)


def test_concurrent_connects(bridge: Host, make_container: Callable[[], str]):
    ipam = IPAM(GATEWAY.network, GATEWAY.ip)
    spaces = [(make_container(), ipam.allocate()) for _ in range(16)]

    def plug(index: int) -> None:
        ns, ip = spaces[index]
        bridge.run(lambda: netlink.connect(ns, BRIDGE, f"vethc{index}", IPv4Interface(f"{ip}/16"),
                                           GATEWAY.ip, mac_address(ip)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(plug, range(len(spaces))))
    assert {f"vethc{i}" for i in range(len(spaces))} <= bridge.links()
    assert _ping(spaces[0][0], str(spaces[-1][1]))
    assert _ping(spaces[-1][0], str(spaces[0][1]))
