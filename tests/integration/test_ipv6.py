"""IPv6 in tetherd beyond what the differential test compares: published ports served by the ip6
nftables table (its map elements come and go with the container, the bridge's rules with the
network), the subnet masqueraded on its way out, a daemon restart that keeps a running
container's IPv6 endpoint and port, and `--ip6tables=false`, where no ip6 table is made and
IPv6 host ports go through the userland proxy.

The daemon's namespace plays the host; a second namespace joined to it by a veth pair
(2001:db8:fe::1 on the daemon's side, 2001:db8:fe::2 outside) plays another machine that has no
route back to the containers' subnets, so only a masqueraded connection gets an answer. Only
documentation prefixes are used and no packet leaves the test's namespaces.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid
from typing import Iterator

import pytest

from conftest import running_daemon

pytestmark = pytest.mark.integration

FLAGS = ("--ipv6", "--fixed-cidr-v6", "2001:db8:1::/64")
SERVER = "while true; do nc -l -p 80 -e echo hello-v6; done"
HOST6, OUTSIDE6 = "2001:db8:fe::1", "2001:db8:fe::2"


def out(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip()


def in_netns(netns: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", *argv], capture_output=True,
                          timeout=30)


def reach(netns: str, address: str, port: int = 8080) -> str:
    """The published port's answer at [address]:port, asked again while the server starts."""
    deadline = time.monotonic() + 15
    while True:
        answer = in_netns(netns, "busybox", "nc", "-w", "2", address, str(port)).stdout.decode()
        if answer or time.monotonic() > deadline:
            return answer.strip()
        time.sleep(0.2)


def ip6_table(netns: str) -> dict | None:
    """tether's ip6 table as nft's JSON (None when there is none)."""
    r = in_netns(netns, "nft", "-j", "list", "table", "ip6", "tether")
    return json.loads(r.stdout) if r.returncode == 0 else None


def map_elements(table: dict, name: str) -> list:
    for item in table["nftables"]:
        if item.get("map", {}).get("name") == name:
            return item["map"].get("elem", [])
    return []


def mentions(table: dict, text: str) -> bool:
    return text in json.dumps(table)


@pytest.fixture(scope="module")
def d() -> Iterator:
    with running_daemon(*FLAGS) as daemon:
        yield daemon


def test_published_port_is_ip6_dnat_and_goes_with_its_container_and_network(d):
    out(d.docker("network", "create", "--ipv6", "--subnet", "2001:db8:3::/64", "v6pub"))
    bridge = "br-" + out(d.docker("network", "inspect", "-f", "{{.Id}}", "v6pub"))[:12]
    try:
        out(d.docker("run", "-d", "--name", "v6p", "--network", "v6pub", "-p", "8080:80",
                     "busybox", "sh", "-c", SERVER))
        table = ip6_table(d.netns)
        assert table is not None
        assert [[{"concat": ["tcp", 8080]}, "2001:db8:3::2"]] == map_elements(
            table, "any-ip-ipv6_addr")
        assert reach(d.netns, "2001:db8:3::1") == "hello-v6"  # a local address: by the kernel
        assert reach(d.netns, "::1") == "hello-v6"            # loopback: by the proxy
        out(d.docker("rm", "-f", "v6p"))
        table = ip6_table(d.netns)
        assert table is not None and map_elements(table, "any-ip-ipv6_addr") == []
        assert mentions(table, bridge)
    finally:
        d.docker("rm", "-f", "v6p")
        out(d.docker("network", "rm", "v6pub"))
    table = ip6_table(d.netns)
    assert table is not None and not mentions(table, bridge) and not mentions(table, "2001:db8:3")
    assert in_netns(d.netns, "ip", "link", "show", bridge).returncode != 0


def test_subnet_is_masqueraded_on_its_way_out(d):
    outside = f"tether-out6-{uuid.uuid4().hex[:6]}"
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
    server = None
    try:
        run("ip", "netns", "add", outside)
        run("ip", "-n", outside, "link", "set", "lo", "up")
        run("ip", "-n", d.netns, "link", "add", "to-out6", "type", "veth", "peer", "name",
            "to-host6", "netns", outside)
        run("ip", "-n", d.netns, "addr", "add", f"{HOST6}/64", "dev", "to-out6", "nodad")
        run("ip", "-n", outside, "addr", "add", f"{OUTSIDE6}/64", "dev", "to-host6", "nodad")
        run("ip", "-n", d.netns, "link", "set", "to-out6", "up")
        run("ip", "-n", outside, "link", "set", "to-host6", "up")
        server = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{outside}", "socat", "TCP6-LISTEN:7000,fork,reuseaddr",
             "SYSTEM:echo outside $SOCAT_PEERADDR"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        out(d.docker("run", "-d", "--name", "v6out", "busybox", "sleep", "300"))
        own = out(d.docker("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}", "v6out"))
        assert own.startswith("2001:db8:1::")
        deadline = time.monotonic() + 15
        while True:
            reply = d.docker("exec", "v6out", "sh", "-c",
                             f"echo | nc -w 2 {OUTSIDE6} 7000").stdout.decode().strip()
            if reply or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # the outside has no route to 2001:db8:1::/64: it answers the host's address
        word, _, peer = reply.partition(" ")
        assert (word, ipaddress.IPv6Address(peer.strip("[]"))) == (
            "outside", ipaddress.IPv6Address(HOST6))
    finally:
        if server is not None:
            server.kill()
            server.wait()
        d.docker("rm", "-f", "v6out")
        subprocess.run(["ip", "netns", "del", outside], capture_output=True)
        subprocess.run(["ip", "-n", d.netns, "link", "del", "to-out6"], capture_output=True)


def test_restart_keeps_the_ipv6_endpoint_and_port(d):
    out(d.docker("network", "create", "--ipv6", "--subnet", "2001:db8:4::/64", "v6rs"))
    try:
        out(d.docker("run", "-d", "--name", "v6r", "--network", "v6rs", "-p", "8081:80",
                     "busybox", "sh", "-c", SERVER))
        assert reach(d.netns, "2001:db8:4::1", 8081) == "hello-v6"
        d.kill9()
        d.start()
        assert out(d.docker("inspect", "-f", "{{.NetworkSettings.Networks.v6rs."
                            "GlobalIPv6Address}}", "v6r")) == "2001:db8:4::2"
        assert reach(d.netns, "2001:db8:4::1", 8081) == "hello-v6"
        assert reach(d.netns, "::1", 8081) == "hello-v6"
        # the restored address is held: the next container gets another one
        out(d.docker("run", "-d", "--name", "v6r2", "--network", "v6rs", "busybox", "sleep", "60"))
        assert out(d.docker("inspect", "-f", "{{.NetworkSettings.Networks.v6rs."
                            "GlobalIPv6Address}}", "v6r2")) == "2001:db8:4::3"
        ping = d.docker("exec", "v6r2", "ping", "-6", "-c1", "-W2", "v6r")
        assert ping.returncode == 0, ping.stdout.decode() + ping.stderr.decode()
    finally:
        d.docker("rm", "-f", "v6r", "v6r2")
        d.docker("network", "rm", "v6rs")


def test_tether_cli_creates_and_connects_with_ipv6(d):
    out(d.tether("network", "create", "--ipv6", "--subnet", "2001:db8:5::/64", "v6cli"))
    try:
        assert out(d.tether("network", "inspect", "-f", "{{.EnableIPv6}}", "v6cli")) == "true"
        out(d.tether("run", "-d", "--name", "v6c", "--network", "v6cli", "--ip6",
                     "2001:db8:5::50", "--link-local-ip", "fe80::50", "busybox", "sleep", "60"))
        addresses = out(d.tether("exec", "v6c", "ip", "-6", "addr", "show", "eth0"))
        assert "2001:db8:5::50/64" in addresses and "fe80::50/64" in addresses
        out(d.tether("run", "-d", "--name", "v6c2", "busybox", "sleep", "60"))
        out(d.tether("network", "connect", "--ip6", "2001:db8:5::51", "v6cli", "v6c2"))
        assert "2001:db8:5::51/64" in out(d.tether("exec", "v6c2", "ip", "-6", "addr"))
        ping = d.tether("exec", "v6c2", "ping", "-6", "-c1", "-W2", "v6c")
        assert ping.returncode == 0, ping.stdout.decode()
    finally:
        d.tether("rm", "-f", "v6c", "v6c2")
        d.tether("network", "rm", "v6cli")


def test_without_ip6tables_there_is_no_ip6_table_and_the_proxy_serves():
    with running_daemon(*FLAGS, "--ip6tables=false") as daemon:
        out(daemon.docker("network", "create", "--ipv6", "--subnet", "2001:db8:6::/64", "v6np"))
        out(daemon.docker("run", "-d", "--name", "v6n", "--network", "v6np", "-p", "8082:80",
                          "busybox", "sh", "-c", SERVER))
        assert ip6_table(daemon.netns) is None
        assert reach(daemon.netns, "::1", 8082) == "hello-v6"
        assert reach(daemon.netns, "2001:db8:6::1", 8082) == "hello-v6"


def test_ip6_table_lives_only_while_a_network_has_ipv6():
    with running_daemon() as daemon:  # no --ipv6: only user networks may have IPv6
        assert ip6_table(daemon.netns) is None
        out(daemon.docker("network", "create", "--ipv6", "--subnet", "2001:db8:7::/64", "v6t"))
        assert ip6_table(daemon.netns) is not None
        out(daemon.docker("network", "rm", "v6t"))
        assert ip6_table(daemon.netns) is None


def test_icc_false_network_keeps_its_containers_apart_over_ipv6(d):
    out(d.docker("network", "create", "--ipv6", "--subnet", "2001:db8:8::/64", "-o",
                 "com.docker.network.bridge.enable_icc=false", "v6icc"))
    try:
        for name in ("v6i1", "v6i2"):
            out(d.docker("run", "-d", "--name", name, "--network", "v6icc", "busybox", "sleep",
                         "60"))
        gateway = d.docker("exec", "v6i1", "ping", "-6", "-c1", "-W2", "2001:db8:8::1")
        assert gateway.returncode == 0  # the host is still reached
        sibling = d.docker("exec", "v6i1", "ping", "-6", "-c1", "-W2", "2001:db8:8::3")
        assert sibling.returncode != 0
    finally:
        d.docker("rm", "-f", "v6i1", "v6i2")
        d.docker("network", "rm", "v6icc")


def test_a_changed_fixed_cidr_v6_replaces_the_bridge_address_and_the_daemon_comes_up():
    with running_daemon(*FLAGS) as daemon:
        out(daemon.docker("run", "-d", "--name", "v6old", "busybox", "sleep", "300"))
        daemon.kill9()
        daemon.flags = ["--ipv6", "--fixed-cidr-v6", "2001:db8:11::/64"]
        daemon.start()
        bridge = in_netns(daemon.netns, "ip", "-6", "addr", "show", "tether0", "scope",
                          "global").stdout.decode()
        assert "2001:db8:11::1/64" in bridge and "2001:db8:1::" not in bridge
        assert out(daemon.docker("inspect", "-f", "{{.State.Running}}", "v6old")) == "true"
        out(daemon.docker("run", "-d", "--name", "v6new", "busybox", "sleep", "300"))
        assert out(daemon.docker("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}",
                                 "v6new")).startswith("2001:db8:11::242:ac11:")
        out(daemon.docker("rm", "-f", "v6old", "v6new"))


def test_link_local_ips_of_both_families_on_the_default_bridge(d):
    """The IPv4 side is compared with Docker in test_bridge_link_local_vs_docker.py; here the
    default bridge has IPv6, and the IPv6 one is added beside it."""
    shown = out(d.docker("run", "--rm", "--link-local-ip", "169.254.9.9", "--link-local-ip",
                         "fe80::99", "busybox", "ip", "addr", "show", "eth0"))
    assert "inet 169.254.9.9/16" in shown and "inet6 fe80::99/64" in shown


def test_default_bridge_publishes_to_the_mac_derived_address(d):
    try:
        out(d.docker("run", "-d", "--name", "v6b", "-p", "8083:80", "busybox", "sh", "-c",
                     SERVER))
        own = out(d.docker("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}", "v6b"))
        table = ip6_table(d.netns)
        assert table is not None
        assert [[{"concat": ["tcp", 8083]}, own]] == map_elements(table, "any-ip-ipv6_addr")
        assert reach(d.netns, "2001:db8:1::1", 8083) == "hello-v6"
        assert reach(d.netns, "::1", 8083) == "hello-v6"
    finally:
        d.docker("rm", "-f", "v6b")
