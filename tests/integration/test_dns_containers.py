"""The embedded resolver end to end in tetherd: containers on a user-defined network resolve each
other while they run, a stopped one stops resolving, a restarted one resolves to its new address, a
renamed one by its new name only, one connected while running (with an alias) resolves and
is served until it is disconnected, unknown names fail at once (the test daemon's namespace has no
route to any upstream) or go to the container's `--dns` server unless all its networks are
internal, the resolver's sockets live as long as the container runs, and a daemon restart serves
the running containers again."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

pytestmark = pytest.mark.integration

Docker = Callable[..., subprocess.CompletedProcess]


def ok(docker: Docker, *args: str) -> str:
    r = docker(*args)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout.decode()


def address(docker: Docker, name: str, net: str) -> str:
    info = json.loads(ok(docker, "inspect", name))[0]
    return info["NetworkSettings"]["Networks"][net]["IPAddress"]


def nslookup(docker: Docker, querier: str, name: str) -> tuple[int, list[str], str]:
    """Exit code, the addresses answered, and the whole output."""
    r = docker("exec", querier, "nslookup", name, timeout=60)
    out = r.stdout.decode() + r.stderr.decode()
    return r.returncode, re.findall(r"^Address: (\S+)$", out, re.M), out


@pytest.fixture
def net(daemon) -> Iterator[tuple[Docker, str, str]]:
    """A user network with a querier container on it; (docker, network, prefix) for names."""
    tag = uuid.uuid4().hex[:6]
    name, prefix = f"dnsc-{tag}", f"dnsc-{tag}-"
    ok(daemon.docker, "network", "create", name)
    try:
        ok(daemon.docker, "run", "-d", "--name", prefix + "q", "--network", name, "busybox",
           "sleep", "600")
        yield daemon.docker, name, prefix
    finally:
        listed = daemon.docker("ps", "-aq", "--filter", f"name={prefix}").stdout.decode().split()
        if listed:
            daemon.docker("rm", "-f", *listed)
        daemon.docker("network", "rm", name)


def test_stopped_stops_resolving_and_restarted_resolves_to_its_new_address(net) -> None:
    docker, name, prefix = net
    x, y, q = prefix + "x", prefix + "y", prefix + "q"
    ok(docker, "run", "-d", "--name", x, "--network", name, "busybox", "sleep", "600")
    first = address(docker, x, name)
    assert nslookup(docker, q, x)[:2] == (0, [first])
    ok(docker, "stop", "-t", "0", x)
    code, found, out = nslookup(docker, q, x)
    assert (code, found) == (1, []) and "SERVFAIL" in out, out
    ok(docker, "run", "-d", "--name", y, "--network", name, "busybox", "sleep", "600")
    ok(docker, "start", x)
    second = address(docker, x, name)
    assert second != first, "the test needs x to come back on another address"
    assert nslookup(docker, q, x)[:2] == (0, [second])
    assert nslookup(docker, q, y)[:2] == (0, [address(docker, y, name)])


def test_unknown_names_fail_with_servfail_not_a_timeout(net) -> None:
    docker, _, prefix = net
    code, found, out = nslookup(docker, prefix + "q", "nowhere.example")
    assert (code, found) == (1, []), out
    assert "server can't find nowhere.example: SERVFAIL" in out


def _dns_sockets(pid: int) -> set[str]:
    """Inodes of the sockets bound to 127.0.0.11:53 in the network namespace of process `pid`."""
    found = set()
    for table in ("udp", "tcp"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "0B00007F:0035":  # 127.0.0.11:53, little-endian hex
                found.add(fields[9])
    return found


def _sockets_held(pid: int) -> set[str]:
    """Inodes of the sockets process `pid` holds; an fd closed while we list them is skipped."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                held.add(link[len("socket:["):-1])
    return held


def test_the_daemon_holds_the_resolver_sockets_only_while_the_container_runs(net, daemon) -> None:
    docker, name, prefix = net
    x = prefix + "x"
    ok(docker, "run", "-d", "--name", x, "--network", name, "busybox", "sleep", "600")
    pid = json.loads(ok(docker, "inspect", x))[0]["State"]["Pid"]
    sockets = _dns_sockets(pid)
    assert len(sockets) == 2  # UDP and TCP
    assert sockets <= _sockets_held(daemon.proc.pid)
    ok(docker, "stop", "-t", "0", x)
    assert not sockets & _sockets_held(daemon.proc.pid)


def test_a_restarted_daemon_serves_running_containers_again(fresh_daemon) -> None:
    docker = fresh_daemon.docker
    ok(docker, "network", "create", "dnsr")
    for name in ("dnsr-a", "dnsr-b"):
        ok(docker, "run", "-d", "--name", name, "--network", "dnsr", "busybox", "sleep", "600")
    expected = address(docker, "dnsr-a", "dnsr")
    fresh_daemon.stop()  # SIGTERM: the resolver closes its sockets, the containers keep running
    fresh_daemon.start()
    assert nslookup(docker, "dnsr-b", "dnsr-a")[:2] == (0, [expected])
    fresh_daemon.kill9()
    fresh_daemon.start()
    assert nslookup(docker, "dnsr-b", "dnsr-a")[:2] == (0, [expected])


def test_a_renamed_container_resolves_by_its_new_name_only(net) -> None:
    docker, name, prefix = net
    old, new, q = prefix + "old", prefix + "new", prefix + "q"
    ok(docker, "run", "-d", "--name", old, "--network", name, "busybox", "sleep", "600")
    where = address(docker, old, name)
    assert nslookup(docker, q, old)[:2] == (0, [where])  # now remembered by the resolver
    ok(docker, "rename", old, new)
    assert nslookup(docker, q, new)[:2] == (0, [where])
    assert nslookup(docker, q, old)[:2] == (1, [])


def test_network_connect_and_disconnect_of_a_running_container(net) -> None:
    docker, name, prefix = net
    b, q = prefix + "b", prefix + "q"
    ok(docker, "run", "-d", "--name", b, "busybox", "sleep", "600")  # the default bridge only
    assert nslookup(docker, q, b)[:2] == (1, [])  # remembered as unknown
    ok(docker, "network", "connect", "--alias", prefix + "bee", name, b)
    where = address(docker, b, name)
    assert nslookup(docker, q, b)[:2] == (0, [where])
    assert nslookup(docker, q, prefix + "bee")[:2] == (0, [where])
    assert nslookup(docker, b, q)[:2] == (0, [address(docker, q, name)])  # b is served now
    ok(docker, "network", "disconnect", name, b)
    assert nslookup(docker, q, b)[:2] == (1, [])


UPSTREAM = "10.99.53.1"  # on the daemon namespace's lo: the resolver forwards from that namespace
FAKE_UPSTREAM = f"""
import sys
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

class Everything(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        if request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("10.1.2.3"), ttl=5))
        return reply

DNSServer(Everything(), address="{UPSTREAM}", port=53,
          logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")).start_thread()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def upstream(daemon) -> Iterator[str]:
    """A DNS server answering 10.1.2.3 for every A query, reachable only from the daemon."""
    subprocess.run(["ip", "-n", daemon.netns, "addr", "add", f"{UPSTREAM}/32", "dev", "lo"],
                   check=True)
    server = None
    try:
        server = subprocess.Popen(["nsenter", f"--net=/run/netns/{daemon.netns}",
                                   sys.executable, "-c", FAKE_UPSTREAM],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        yield UPSTREAM
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "-n", daemon.netns, "addr", "del", f"{UPSTREAM}/32", "dev", "lo"],
                       check=False)


def test_unknown_names_go_to_the_containers_dns_but_never_out_of_an_internal_network(
        daemon, upstream) -> None:
    docker = daemon.docker
    tag = uuid.uuid4().hex[:6]
    nets = {"open": f"dnsu-{tag}", "internal": f"dnsi-{tag}"}
    ok(docker, "network", "create", nets["open"])
    ok(docker, "network", "create", "--internal", nets["internal"])
    try:
        for kind, net in nets.items():
            ok(docker, "run", "-d", "--name", net, "--network", net, "--dns", upstream, "busybox",
               "sleep", "600")
        assert nslookup(docker, nets["open"], "outside.example")[:2] == (0, ["10.1.2.3"])
        code, found, out = nslookup(docker, nets["internal"], "outside.example")
        assert (code, found) == (1, []) and "SERVFAIL" in out, out
    finally:
        docker("rm", "-f", *nets.values())
        for net in nets.values():
            docker("network", "rm", net)
