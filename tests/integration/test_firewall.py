"""tether's nftables table carrying real TCP and UDP traffic, in namespaces of the test's own.

Layout: netns `h` plays the daemon's host (bridge tt0 10.203.0.1/24, route_localnet and hairpin
set as the network manager sets them, uplink 10.204.0.1/24); `c1` (10.203.0.2) and `c2`
(10.203.0.3) play containers; `o` (10.204.0.2) plays another host on the outside. Servers on
port 5000 answer `<name> <peer address>`, so a test sees both who answered and the source NAT.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from test_proxy import in_netns
from tether.network import firewall
from tether.network.firewall import FirewallConfig, Mapping
from tether.network.proxy import PortHolder

BRIDGE = "tt0"
SUBNET = "10.203.0.0/24"
GATEWAY, C1, C2 = "10.203.0.1", "10.203.0.2", "10.203.0.3"
UPLINK, OUTSIDE = "10.204.0.1", "10.204.0.2"
TABLE = "tether-test"
MAPPINGS = (
    Mapping("tcp", "0.0.0.0", 18080, C1, 5000),
    Mapping("udp", "0.0.0.0", 18080, C1, 5000),
    Mapping("tcp", "127.0.0.1", 18081, C1, 5000),
    Mapping("tcp", "0.0.0.0", 18082, C2, 5000),
    Mapping("udp", "127.0.0.1", 18083, C2, 5000),
)

SERVER = r"""
import socket, sys, threading
name = sys.argv[1]
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 5000)); tcp.listen()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 5000))
def serve_udp():
    while True:
        data, peer = udp.recvfrom(100)
        udp.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=serve_udp, daemon=True).start()
print("ready", flush=True)
while True:
    conn, peer = tcp.accept()
    conn.sendall(f"{name} {peer[0]}".encode()); conn.close()
"""


@dataclass
class Net:
    h: str
    c1: str
    c2: str
    o: str


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _veth(host: str, name: str, peer_ns: str, host_addr: str | None, peer_addr: str) -> None:
    sh("ip", "-n", host, "link", "add", name, "type", "veth", "peer", "name", "eth0",
       "netns", peer_ns)
    if host_addr:
        sh("ip", "-n", host, "addr", "add", host_addr, "dev", name)
    sh("ip", "-n", host, "link", "set", name, "up")
    sh("ip", "-n", peer_ns, "addr", "add", peer_addr, "dev", "eth0")
    sh("ip", "-n", peer_ns, "link", "set", "eth0", "up")


def _build(net: Net) -> None:
    for ns in (net.h, net.c1, net.c2, net.o):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", net.h, "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "-n", net.h, "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    sh("ip", "-n", net.h, "link", "set", BRIDGE, "up")
    for ns, addr, port in ((net.c1, C1, "vc1"), (net.c2, C2, "vc2")):
        _veth(net.h, port, ns, None, f"{addr}/24")
        sh("ip", "-n", net.h, "link", "set", port, "master", BRIDGE)
        sh("ip", "-n", net.h, "link", "set", port, "type", "bridge_slave", "hairpin", "on")
        sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY)
    _veth(net.h, "vout", net.o, f"{UPLINK}/24", f"{OUTSIDE}/24")
    sh("nsenter", f"--net=/run/netns/{net.h}", "sysctl", "-qw", "net.ipv4.ip_forward=1",
       f"net.ipv4.conf.{BRIDGE}.route_localnet=1")


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    tag = secrets.token_hex(3)
    n = Net(*(f"tether-t-{tag}-{role}" for role in ("h", "c1", "c2", "o")))
    servers: list[subprocess.Popen[str]] = []
    try:
        _build(n)
        for ns, name in ((n.c1, "c1"), (n.c2, "c2"), (n.o, "o")):
            proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c",
                                     SERVER, name], stdout=subprocess.PIPE, text=True)
            servers.append(proc)
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        in_netns(n.h, lambda: firewall.apply(config()))
        yield n
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        for ns in (n.h, n.c1, n.c2, n.o):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def config(**changes: object) -> FirewallConfig:
    return FirewallConfig(**{"table": TABLE, "bridge": BRIDGE, "subnet": SUBNET,
                             "mappings": MAPPINGS, **changes})


def ask(ns: str, proto: str, ip: str, port: int, timeout: float = 2.0) -> str:
    """One request from inside netns `ns`: the server's `<name> <peer>` answer."""
    def request() -> str:
        if proto == "tcp":
            with socket.create_connection((ip, port), timeout=timeout) as sock:
                return sock.recv(100).decode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(b"ping", (ip, port))
            return sock.recv(100).decode()
    return in_netns(ns, request)


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_from_loopback(net, proto):
    assert ask(net.h, proto, "127.0.0.1", 18080) == f"c1 {GATEWAY}"  # 127/8 masqueraded


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_from_the_hosts_own_address(net, proto):
    assert ask(net.h, proto, UPLINK, 18080) == f"c1 {UPLINK}"


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_from_outside_keeps_the_client_address(net, proto):
    assert ask(net.o, proto, UPLINK, 18080) == f"c1 {OUTSIDE}"


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_hairpin_to_itself_through_a_host_address(net, proto):
    assert ask(net.c1, proto, UPLINK, 18080) == f"c1 {GATEWAY}"
    assert ask(net.c1, proto, GATEWAY, 18080) == f"c1 {GATEWAY}"


def test_hairpin_to_a_sibling(net):
    assert ask(net.c1, "tcp", GATEWAY, 18082) == f"c2 {GATEWAY}"
    assert ask(net.c2, "tcp", UPLINK, 18080) == f"c1 {GATEWAY}"


def test_loopback_bindings_serve_local_clients_only(net):
    assert ask(net.h, "tcp", "127.0.0.1", 18081) == f"c1 {GATEWAY}"
    assert ask(net.h, "udp", "127.0.0.1", 18083) == f"c2 {GATEWAY}"
    with pytest.raises(ConnectionRefusedError):
        ask(net.o, "tcp", UPLINK, 18081)
    with pytest.raises(ConnectionRefusedError):
        ask(net.h, "tcp", UPLINK, 18081)
    with pytest.raises(TimeoutError):
        ask(net.o, "udp", UPLINK, 18083, timeout=0.5)


def test_container_to_outside_is_masqueraded(net):
    assert ask(net.c1, "tcp", OUTSIDE, 5000) == f"o {UPLINK}"
    assert ask(net.c2, "udp", OUTSIDE, 5000) == f"o {UPLINK}"


def test_container_to_container_by_ip(net):
    assert ask(net.c1, "tcp", C2, 5000) == f"c2 {C1}"


def test_outside_reaches_a_container_directly_only_on_published_ports(net):
    """As Docker's DOCKER chain: with a route to the subnet, a published container port is open
    at the container's own address; an unpublished one is not."""
    unpublished_c1 = tuple(m for m in MAPPINGS if m.container_ip != C1)
    in_netns(net.h, lambda: firewall.apply(config(mappings=unpublished_c1)))
    sh("ip", "-n", net.o, "route", "replace", SUBNET, "via", UPLINK)
    try:
        with pytest.raises(TimeoutError):
            ask(net.o, "tcp", C1, 5000, timeout=0.5)
        assert ask(net.o, "tcp", C2, 5000) == f"c2 {OUTSIDE}"
    finally:
        sh("ip", "-n", net.o, "route", "del", SUBNET)
        in_netns(net.h, lambda: firewall.apply(config()))


def test_a_bound_holder_does_not_steal_dnat_traffic(net):
    def hold_and_ask() -> str:
        holders = [PortHolder("tcp", "0.0.0.0", 18080), PortHolder("udp", "0.0.0.0", 18080)]
        try:
            return ask(net.h, "tcp", "127.0.0.1", 18080) + "|" + ask(net.o, "udp", UPLINK, 18080)
        finally:
            for holder in holders:
                holder.close()
    assert in_netns(net.h, hold_and_ask) == f"c1 {GATEWAY}|c1 {OUTSIDE}"


def test_icc_off_allows_only_the_accepted_pairs(net):
    """Bridged frames reach the forward hook only through br_netfilter (as for Docker)."""
    knob = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    assert os.path.exists(knob), "br_netfilter is not loaded (the test does not load it)"
    before = in_netns(net.h, lambda: open(knob).read().strip())
    sysctl = "net.bridge.bridge-nf-call-iptables"
    sh("nsenter", f"--net=/run/netns/{net.h}", "sysctl", "-qw", f"{sysctl}=1")
    try:
        in_netns(net.h, lambda: firewall.apply(config(icc=False,
                                                      accepts=(("tcp", C1, C2, 5000),))))
        assert ask(net.c1, "tcp", C2, 5000) == f"c2 {C1}"
        with pytest.raises(TimeoutError):
            ask(net.c2, "tcp", C1, 5000, timeout=0.5)
        assert ask(net.c2, "tcp", UPLINK, 18080) == f"c1 {GATEWAY}"  # published ports still work
    finally:
        sh("nsenter", f"--net=/run/netns/{net.h}", "sysctl", "-qw", f"{sysctl}={before}")
        in_netns(net.h, lambda: firewall.apply(config()))


def _listing(ns: str) -> str:
    return in_netns(ns, lambda: subprocess.run(["nft", "list", "table", "ip", TABLE], check=True,
                                                capture_output=True, text=True).stdout)


def test_reapply_is_idempotent(net):
    before = _listing(net.h)
    in_netns(net.h, lambda: firewall.apply(config()))
    in_netns(net.h, lambda: firewall.apply(config()))
    assert _listing(net.h) == before
    assert ask(net.o, "tcp", UPLINK, 18080) == f"c1 {OUTSIDE}"


def test_apply_changes_mappings_and_reports_nft_errors(net):
    moved = (Mapping("tcp", "0.0.0.0", 18090, C2, 5000),)
    try:
        in_netns(net.h, lambda: firewall.apply(config(mappings=moved)))
        assert ask(net.o, "tcp", UPLINK, 18090) == f"c2 {OUTSIDE}"
        with pytest.raises(ConnectionRefusedError):
            ask(net.o, "tcp", UPLINK, 18080)
        with pytest.raises(RuntimeError, match="nft failed"):
            in_netns(net.h, lambda: firewall.apply(config(bridge="x" * 40)))
        assert ask(net.o, "tcp", UPLINK, 18090) == f"c2 {OUTSIDE}"  # the old table stayed whole
    finally:
        in_netns(net.h, lambda: firewall.apply(config()))


def test_apply_200_mappings_takes_milliseconds(net):
    many = tuple(Mapping("tcp" if i % 2 else "udp", "0.0.0.0" if i % 3 else "127.0.0.1",
                         20000 + i, f"10.203.0.{2 + i % 200}", 80) for i in range(200))
    scratch = "tether-test-scale"

    def timed() -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            firewall.apply(config(table=scratch, mappings=many))
            best = min(best, time.perf_counter() - start)
        firewall.remove(scratch)
        return best

    seconds = in_netns(net.h, timed)
    print(f"apply with 200 mappings: {seconds * 1000:.1f} ms")
    assert seconds < 0.2


def test_remove_leaves_no_table_and_tolerates_absence(net):
    def cycle() -> str:
        firewall.apply(config(table="tether-test-gone"))
        firewall.remove("tether-test-gone")
        firewall.remove("tether-test-gone")
        return subprocess.run(["nft", "-j", "list", "tables"], check=True, capture_output=True,
                              text=True).stdout
    tables = [item["table"]["name"] for item in json.loads(in_netns(net.h, cycle))["nftables"]
              if "table" in item]
    assert tables == [TABLE]
