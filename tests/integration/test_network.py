"""Bridge networking and published ports with real traffic.

The test daemon's namespace plays the host. A second namespace, joined to it by a veth pair
(host side 10.99.0.1, outside side 10.99.0.2), plays another machine: an outside client, and a
server that containers reach through the masquerade. Containers run socat servers that answer
with the peer address they saw, so each test also shows who the container thinks called.
"""
from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from hostimage import host_binaries_tar, import_args
from test_lifecycle import inspect, out

pytestmark = pytest.mark.integration

HOST_ADDR = "10.99.0.1"
OUTSIDE_ADDR = "10.99.0.2"
# The reply scripts read the request before answering: an `echo` alone could exit before socat
# wrote the request to it, and socat then died of EPIPE without sending the reply (seen on a loaded
# machine). Requests are `ping` (probe) or a newline (`echo | nc`); a datagram has no EOF, so the
# UDP one reads exactly the probe's 4 bytes. -t 5: after the client's half-close socat waits that
# long for the reply (its default, 0.5 s, is not always enough under load).
TCP_SERVER = "socat -t 5 TCP-LISTEN:5000,fork,reuseaddr SYSTEM:'read -t 2 _; echo tcp $SOCAT_PEERADDR'"
UDP_SERVER = "socat -t 5 UDP-RECVFROM:5001,fork SYSTEM:'head -c 4 >/dev/null; echo udp $SOCAT_PEERADDR'"
SERVERS = f"{TCP_SERVER} & {UDP_SERVER} & wait"


def in_netns(netns: str, code: str, timeout: float = 20) -> str:
    r = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c",
                        textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def probe(netns: str, proto: str, host: str, port: int) -> str:
    """Send `ping` over TCP or UDP from inside `netns`; the reply, or `ERR <reason>`."""
    return in_netns(netns, f"""
        import socket, sys
        family = socket.AF_INET6 if ":" in {host!r} else socket.AF_INET
        kind = socket.SOCK_STREAM if {proto!r} == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(family, kind)
        s.settimeout(3)
        try:
            if kind == socket.SOCK_STREAM:
                s.connect(({host!r}, {port}))
                s.sendall(b"ping")
                s.shutdown(socket.SHUT_WR)
            else:
                s.sendto(b"ping", ({host!r}, {port}))
            sys.stdout.write(s.recv(200).decode().strip())
        except OSError as exc:
            sys.stdout.write("ERR " + type(exc).__name__)
    """)


def wait_for_server(netns: str, host: str, port: int = 5000) -> None:
    deadline = time.monotonic() + 10
    while not probe(netns, "tcp", host, port).startswith("tcp"):
        assert time.monotonic() < deadline, f"no server on {host}:{port}"
        time.sleep(0.1)


class Net:
    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.host = daemon.netns
        self.outside = f"tether-out-{uuid.uuid4().hex[:6]}"

    def setup(self) -> None:
        run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
        run("ip", "netns", "add", self.outside)
        run("ip", "-n", self.outside, "link", "set", "lo", "up")
        run("ip", "-n", self.host, "link", "add", "to-out", "type", "veth", "peer", "name",
            "to-host", "netns", self.outside)
        run("ip", "-n", self.host, "addr", "add", f"{HOST_ADDR}/24", "dev", "to-out")
        run("ip", "-n", self.outside, "addr", "add", f"{OUTSIDE_ADDR}/24", "dev", "to-host")
        run("ip", "-n", self.host, "link", "set", "to-out", "up")
        run("ip", "-n", self.outside, "link", "set", "to-host", "up")
        tar = host_binaries_tar(["/usr/bin/socat"])
        out(self.daemon.tether("import", *import_args(), "-", "nettools", input=tar))

    def teardown(self) -> None:
        subprocess.run(["ip", "netns", "del", self.outside], capture_output=True)
        subprocess.run(["ip", "-n", self.host, "link", "del", "to-out"], capture_output=True)

    def server(self, *publish: str, name: str | None = None) -> str:
        args = ["run", "-d", *publish, "nettools", "sh", "-c", SERVERS]
        if name:
            args[2:2] = ["--name", name]
        return out(self.daemon.tether(*args))


@pytest.fixture(scope="module")
def net(daemon):
    n = Net(daemon)
    try:
        n.setup()
        yield n
    finally:
        n.teardown()


def port_of(daemon, cid: str, key: str, host_ip: str = "0.0.0.0") -> int:
    ports = inspect(daemon, cid)["NetworkSettings"]["Ports"][key]
    return int(next(b["HostPort"] for b in ports if b["HostIp"] == host_ip))


def test_endpoint_and_files(net):
    d = net.daemon
    cid = net.server()
    try:
        settings = inspect(d, cid)["NetworkSettings"]
        ip = settings["IPAddress"]
        assert ip.startswith("172.17.0.") and settings["Gateway"] == "172.17.0.1"
        assert settings["IPPrefixLen"] == 16
        last = int(ip.rsplit(".", 1)[1])
        assert settings["MacAddress"] == f"02:42:ac:11:00:{last:02x}"
        assert settings["Networks"]["bridge"]["IPAddress"] == ip
        hosts = out(d.tether("exec", cid, "cat", "/etc/hosts")).splitlines()
        assert hosts[0] == "127.0.0.1\tlocalhost" and hosts[-1] == f"{ip}\t{cid[:12]}"
        assert "default via 172.17.0.1" in out(d.tether("exec", cid, "ip", "route"))
        # container to container by IP
        other = net.server()
        wait_for_server(net.host, ip)
        reply = out(d.tether("exec", other, "sh", "-c", f"echo | nc {ip} 5000"))
        assert reply == f"tcp {inspect(d, other)['NetworkSettings']['IPAddress']}"
        d.tether("rm", "-f", other)
    finally:
        d.tether("rm", "-f", cid)
    stopped = out(d.tether("create", "busybox"))
    assert inspect(d, stopped)["NetworkSettings"]["IPAddress"] == ""
    d.tether("rm", stopped)


def test_every_publish_form_carries_tcp_and_udp(net):
    d = net.daemon
    cid = net.server("-p", "6666:5000", "-p", "6666:5001/udp", "-p", "127.0.0.1::5000",
                     "-p", "127.0.0.1::5001/udp", "-p", "8000-9000:5000", "-P", "--expose", "5000")
    try:
        ip = inspect(d, cid)["NetworkSettings"]["IPAddress"]
        wait_for_server(net.host, ip)
        local = port_of(d, cid, "5000/tcp", "127.0.0.1")
        local_udp = port_of(d, cid, "5001/udp", "127.0.0.1")
        ranged = [int(b["HostPort"]) for b in inspect(d, cid)["NetworkSettings"]["Ports"]["5000/tcp"]
                  if b["HostIp"] == "0.0.0.0" and 8000 <= int(b["HostPort"]) <= 9000]
        assert ranged == [8000]
        gateway = "172.17.0.1"
        # from the host's loopback and its own non-loopback address
        for host in ("127.0.0.1", HOST_ADDR):
            assert probe(net.host, "tcp", host, 6666).startswith("tcp ")
            assert probe(net.host, "udp", host, 6666).startswith("udp ")
            assert probe(net.host, "tcp", host, 8000).startswith("tcp ")
        assert probe(net.host, "tcp", "127.0.0.1", local).startswith("tcp ")
        assert probe(net.host, "udp", "127.0.0.1", local_udp).startswith("udp ")
        # from another machine: the client's own address is what the container sees
        assert probe(net.outside, "tcp", HOST_ADDR, 6666) == f"tcp {OUTSIDE_ADDR}"
        assert probe(net.outside, "udp", HOST_ADDR, 6666) == f"udp {OUTSIDE_ADDR}"
        # a port bound to 127.0.0.1 is not reachable from another machine
        assert probe(net.outside, "tcp", HOST_ADDR, local).startswith("ERR")
        # IPv6 on the host: served by the daemon's proxy
        assert probe(net.host, "tcp", "::1", 6666).startswith("tcp ")
        # hairpin: the container reaches its own published port through a host address
        reply = out(d.tether("exec", cid, "sh", "-c", f"echo | nc {HOST_ADDR} 6666"))
        assert reply == f"tcp {gateway}"  # masqueraded, or the reply would bypass the NAT
    finally:
        d.tether("rm", "-f", cid)


def test_publish_all_and_a_fixed_udp_port_on_loopback(net):
    """The seed's `-P` and `127.0.0.1:80:5000/udp` forms, with real traffic."""
    d = net.daemon
    cid = net.server("-P", "--expose", "5000", "--expose", "5001/udp")
    fixed = net.server("-p", "127.0.0.1:80:5001/udp")
    try:
        wait_for_server(net.host, inspect(d, cid)["NetworkSettings"]["IPAddress"])
        tcp, udp = port_of(d, cid, "5000/tcp"), port_of(d, cid, "5001/udp")
        assert {tcp, udp} <= set(range(32768, 61000))
        for host in ("127.0.0.1", HOST_ADDR):
            assert probe(net.host, "tcp", host, tcp).startswith("tcp ")
            assert probe(net.host, "udp", host, udp).startswith("udp ")
        assert probe(net.outside, "tcp", HOST_ADDR, tcp) == f"tcp {OUTSIDE_ADDR}"
        assert probe(net.outside, "udp", HOST_ADDR, udp) == f"udp {OUTSIDE_ADDR}"
        assert probe(net.host, "udp", "127.0.0.1", 80).startswith("udp ")
        assert probe(net.outside, "udp", HOST_ADDR, 80).startswith("ERR")
    finally:
        d.tether("rm", "-f", cid, fixed)


def test_sibling_hairpin_and_masquerade_out(net):
    d = net.daemon
    server = net.server("-p", "7777:5000")
    client = net.server()
    outside_server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{net.outside}", "socat", "TCP-LISTEN:7000,fork,reuseaddr",
         "SYSTEM:echo outside $SOCAT_PEERADDR"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_server(net.host, inspect(d, server)["NetworkSettings"]["IPAddress"])
        reply = out(d.tether("exec", client, "sh", "-c", f"echo | nc {HOST_ADDR} 7777"))
        assert reply == "tcp 172.17.0.1"
        deadline = time.monotonic() + 10
        while True:
            reply = d.tether("exec", client, "sh", "-c", f"echo | nc {OUTSIDE_ADDR} 7000").stdout
            if reply or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert reply.decode().strip() == f"outside {HOST_ADDR}"  # masqueraded to the host
    finally:
        outside_server.kill()
        outside_server.wait()
        d.tether("rm", "-f", server, client)


def test_taken_ports_and_release(net):
    d = net.daemon
    first = out(d.tether("run", "-d", "-p", "6601:5000", "busybox", "sleep", "60"))
    try:
        r = d.tether("run", "-d", "--name", "second", "-p", "6601:5000", "busybox", "sleep", "60")
        assert r.returncode == 125
        assert b"Bind for 0.0.0.0:6601 failed: port is already allocated" in r.stderr
        assert inspect(d, "second")["State"]["Running"] is False
        out(d.tether("rm", "-f", first))
        out(d.tether("start", "second"))
        assert port_of(d, "second", "5000/tcp") == 6601
    finally:
        d.tether("rm", "-f", first, "second")


def test_better_than_docker_range_skips_a_port_held_elsewhere(net):
    d = net.daemon
    holder = subprocess.Popen(["nsenter", f"--net=/run/netns/{net.host}", "socat",
                               "TCP-LISTEN:8100,bind=0.0.0.0,fork", "SYSTEM:true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        cid = out(d.tether("run", "-d", "-p", "127.0.0.1:8100-8200:5000", "busybox", "sleep", "60"))
        assert port_of(d, cid, "5000/tcp", "127.0.0.1") == 8101
        d.tether("rm", "-f", cid)
    finally:
        holder.kill()
        holder.wait()


def test_port_and_ps_reports(net):
    d = net.daemon
    cid = out(d.tether("run", "-d", "-p", "6611:80", "-p", "127.0.0.1::81/udp", "--expose", "90",
                       "busybox", "sleep", "60"))
    try:
        lines = out(d.tether("port", cid)).splitlines()
        assert lines[:2] == ["80/tcp -> 0.0.0.0:6611", "80/tcp -> [::]:6611"]
        assert lines[2].startswith("81/udp -> 127.0.0.1:")
        assert out(d.tether("port", cid, "80")) == "0.0.0.0:6611\n[::]:6611"
        r = d.tether("port", cid, "90")
        assert r.returncode == 1 and b"No public port '90' published for" in r.stderr
        row = out(d.tether("ps", "--no-trunc", "--filter", f"id={cid}", "--format", "{{.Ports}}"))
        udp = port_of(d, cid, "81/udp", "127.0.0.1")
        # docker's grouping: ranges of equal ports first, then host mappings (public != private)
        assert row == f"90/tcp, 0.0.0.0:6611->80/tcp, [::]:6611->80/tcp, 127.0.0.1:{udp}->81/udp"
        status, items = d.api("GET", f'/containers/json?filters={{"id":["{cid}"]}}')
        ports = sorted(items[0]["Ports"], key=json.dumps)
        assert {"PrivatePort": 90, "Type": "tcp"} in ports
        assert {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 6611, "Type": "tcp"} in ports
    finally:
        d.tether("rm", "-f", cid)


def test_fifty_concurrent_publish_all(net):
    d = net.daemon

    def run(_: int) -> str:
        r = d.tether("run", "-d", "-P", "--expose", "80", "busybox", "sleep", "60", timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.decode().strip()

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(run, range(50)))
    try:
        ports = [port_of(d, cid, "80/tcp") for cid in ids]
        assert len(set(ports)) == 50
        ips = {inspect(d, cid)["NetworkSettings"]["IPAddress"] for cid in ids}
        assert len(ips) == 50
    finally:
        for chunk in range(0, 50, 10):
            d.tether("rm", "-f", *ids[chunk:chunk + 10], timeout=120)


def test_run_rm_cycles_leave_nothing(net):
    d = net.daemon
    for _ in range(200):
        cid = out(d.tether("run", "-d", "-P", "--expose", "80", "busybox", "sleep", "60"))
        out(d.tether("rm", "-f", cid))
        assert d.leaks(cid) == []
    links = subprocess.run(["ip", "-n", net.host, "-o", "link", "show", "type", "veth"],
                           capture_output=True, text=True).stdout
    assert [line for line in links.splitlines() if "to-out" not in line] == []
    rules = subprocess.run(["nsenter", f"--net=/run/netns/{net.host}", "nft", "list", "ruleset"],
                           capture_output=True, text=True).stdout
    assert "elements" not in rules  # the DNAT maps are empty: no mapping left
    # no port is held any more: no bound TCP/UDP socket (holders, proxies) in the host namespace
    held = subprocess.run(["nsenter", f"--net=/run/netns/{net.host}", "ss", "-H", "-tuan"],
                          capture_output=True, text=True).stdout
    assert held.strip() == ""
    assert list((d.exec_root / "netns").iterdir()) == []


def test_daemon_restart_keeps_ports_working_and_allocated(net):
    d = net.daemon
    cid = net.server("-p", "6720:5000", "-p", "6720:5001/udp")
    try:
        ip = inspect(d, cid)["NetworkSettings"]["IPAddress"]
        wait_for_server(net.host, ip)
        d.kill9()
        # the kernel keeps forwarding while no daemon runs
        assert probe(net.outside, "tcp", HOST_ADDR, 6720) == f"tcp {OUTSIDE_ADDR}"
        d.start()
        assert probe(net.outside, "udp", HOST_ADDR, 6720) == f"udp {OUTSIDE_ADDR}"
        assert probe(net.host, "tcp", "::1", 6720).startswith("tcp ")  # the proxy is back
        r = d.tether("run", "-d", "--name", "late", "-p", "6720:5000", "busybox", "sleep", "60")
        assert b"Bind for 0.0.0.0:6720 failed: port is already allocated" in r.stderr
        fresh = out(d.tether("run", "-d", "busybox", "sleep", "60"))
        assert inspect(d, fresh)["NetworkSettings"]["IPAddress"] != ip
        d.tether("rm", "-f", fresh)
    finally:
        d.tether("rm", "-f", cid, "late")
