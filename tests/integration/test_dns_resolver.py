"""The embedded resolver on its own, in namespaces the test makes.

A named namespace plays the daemon's: the resolver's event loop runs in a thread that joined it,
so forwarded queries leave from there, and a fake upstream server listens there at 127.0.0.1:53.
Container namespaces are files made by tether.network.netns; queries are sent from inside them
with dnslib (by a thread that joined the namespace) and with busybox `nslookup` run by nsenter.
Nothing is sent in the test process's own namespace.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from tether.network import netns
from tether.network.resolver import EmbeddedResolver

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

T = TypeVar("T")
UPSTREAM = "127.0.0.1"  # the fake upstream, in the daemon's stand-in namespace
SILENT = "127.0.0.2"  # a socket there that never answers
UNREACHABLE = "192.0.2.1"  # no route from there: fails at once
VIEWS = {  # container id -> the names it knows
    "c1": {"web": [IPv4Address("172.18.0.2")], "db": [IPv4Address("172.18.0.3")]},
    "c2": {"web": [IPv4Address("172.19.0.7")]},
}
PTRS = {IPv4Address("172.18.0.2"): "web.appnet"}


def lookup(container_id: str, name: str) -> list[IPv4Address]:
    return VIEWS.get(container_id, {}).get(name, [])


def reverse(container_id: str, ip: IPv4Address) -> str | None:
    return PTRS.get(ip) if container_id == "c1" else None


def upstream_reply(data: bytes) -> bytes:
    """The fake upstream's answers: `*.upstream.test` is 10.9.9.9, anything else NXDOMAIN."""
    query = DNSRecord.parse(data)
    reply = query.reply()
    if str(query.q.qname).endswith(".upstream.test."):
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("10.9.9.9"), ttl=30))
    else:
        reply.header.rcode = RCODE.NXDOMAIN
    return bytes(reply.pack())


class FakeUpstream(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(upstream_reply(data), addr)  # type: ignore[attr-defined]


async def fake_upstream_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    size = int.from_bytes(await reader.readexactly(2), "big")
    reply = upstream_reply(await reader.readexactly(size))
    writer.write(len(reply).to_bytes(2, "big") + reply)
    await writer.drain()
    writer.close()


class DaemonSide:
    """An event loop in a thread inside the stand-in daemon namespace."""

    def __init__(self, name: str) -> None:
        self.path = f"/run/netns/{name}"
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="dns-test-loop")
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            netns.enter(fd)
        finally:
            os.close(fd)
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _inside(path: Path, work: Callable[[], T]) -> T:
    def run() -> T:
        fd = os.open(path, os.O_RDONLY)
        try:
            netns.enter(fd)
        finally:
            os.close(fd)
        return work()
    return netns.in_own_thread(run, "dns-test-client")


def query(path: Path, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    request = DNSRecord.question(name, qtype)
    raw = _inside(path, lambda: request.send("127.0.0.11", 53, tcp=tcp, timeout=10))
    reply = DNSRecord.parse(raw)
    assert reply.header.id == request.header.id
    return reply


def addresses(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr]


def nslookup(path: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", "busybox", "nslookup", name, "127.0.0.11"],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def world() -> Iterator[tuple[DaemonSide, Callable[..., EmbeddedResolver], dict[str, Path]]]:
    """The daemon stand-in with its upstreams, a resolver factory and two container namespaces."""
    name = f"tdns-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    side: DaemonSide | None = None
    resolvers: list[EmbeddedResolver] = []
    containers = {cid: Path(f"/run/tether-dns-test-{name}/{cid}") for cid in VIEWS}
    silent: list[socket.socket] = []
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        side = DaemonSide(name)

        async def upstreams() -> None:
            loop = asyncio.get_running_loop()
            await loop.create_datagram_endpoint(FakeUpstream, local_addr=(UPSTREAM, 53))
            await asyncio.start_server(fake_upstream_tcp, UPSTREAM, 53)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((SILENT, 53))
            silent.append(sock)

        side.call(upstreams())
        for path in containers.values():
            netns.create(path)

        def make(servers: list[str], names: Callable = lookup, **options: Any
                 ) -> EmbeddedResolver:
            resolver = EmbeddedResolver(names, reverse, servers, **{"timeout": 0.3, **options})
            resolvers.append(resolver)
            return resolver

        yield side, make, containers
    finally:
        if side is not None:
            for resolver in resolvers:
                side.call(resolver.close())
            side.close()
        for sock in silent:
            sock.close()
        for path in containers.values():
            netns.remove(path)
        if containers:
            next(iter(containers.values())).parent.rmdir()
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_names_resolve_over_udp_and_tcp_with_each_containers_own_view(world) -> None:
    side, make, containers = world
    resolver = make([UPSTREAM])
    for cid, path in containers.items():
        side.call(resolver.serve(cid, str(path)))
    r = query(containers["c1"], "web")
    assert (r.header.rcode, addresses(r), r.rr[0].ttl) == (RCODE.NOERROR, ["172.18.0.2"], 600)
    assert addresses(query(containers["c1"], "db", tcp=True)) == ["172.18.0.3"]
    assert addresses(query(containers["c2"], "web", tcp=True)) == ["172.19.0.7"]
    assert query(containers["c1"], "web", "AAAA").rr == []
    ptr = query(containers["c1"], "2.0.18.172.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == ["web.appnet."]


def test_busybox_nslookup_gets_names_and_the_upstreams_answers(world) -> None:
    side, make, containers = world
    resolver = make([UPSTREAM])
    side.call(resolver.serve("c1", str(containers["c1"])))
    done = nslookup(containers["c1"], "web")
    assert done.returncode == 0, done.stderr
    assert "Address: 172.18.0.2" in done.stdout
    done = nslookup(containers["c1"], "www.upstream.test")
    assert done.returncode == 0, done.stderr
    assert "Address: 10.9.9.9" in done.stdout
    done = nslookup(containers["c1"], "missing.test")
    assert done.returncode != 0
    assert "NXDOMAIN" in done.stdout + done.stderr


def test_unknown_names_go_to_the_first_upstream_that_answers(world) -> None:
    side, make, containers = world
    resolver = make([UNREACHABLE, SILENT, UPSTREAM])
    side.call(resolver.serve("c1", str(containers["c1"])))
    for tcp in (False, True):
        r = query(containers["c1"], "api.upstream.test", tcp=tcp)
        assert (r.header.rcode, addresses(r)) == (RCODE.NOERROR, ["10.9.9.9"]), tcp
    assert query(containers["c1"], "nothing.test").header.rcode == RCODE.NXDOMAIN
    unknown_ptr = query(containers["c1"], "9.9.9.10.in-addr.arpa", "PTR")
    assert unknown_ptr.header.rcode == RCODE.NXDOMAIN


def test_servfail_when_none_of_the_first_three_upstreams_answers(world) -> None:
    side, make, containers = world
    resolver = make([UNREACHABLE, SILENT, UNREACHABLE, UPSTREAM])  # a 4th is never asked
    side.call(resolver.serve("c1", str(containers["c1"])))
    for tcp in (False, True):
        r = query(containers["c1"], "api.upstream.test", tcp=tcp)
        assert (r.header.rcode, r.rr) == (RCODE.SERVFAIL, []), tcp
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]


def test_malformed_packets_are_answered_or_dropped_and_serving_goes_on(world) -> None:
    side, make, containers = world
    resolver = make([UPSTREAM])
    side.call(resolver.serve("c1", str(containers["c1"])))
    header_only = DNSRecord.question("web").pack()[:14]

    def send_garbage() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(10)
            sock.connect(("127.0.0.11", 53))
            for junk in (b"", b"\x00", os.urandom(7), b"\xff" * 600):
                sock.send(junk)
            sock.send(header_only)
            return sock.recv(512)
    formerr = DNSRecord.parse(_inside(containers["c1"], send_garbage))
    assert formerr.header.rcode == RCODE.FORMERR

    def tcp_garbage() -> bytes:
        with socket.create_connection(("127.0.0.11", 53), timeout=10) as sock:
            sock.sendall(b"\x00\x05abc")  # announces 5 bytes, sends 3, then hangs up
        with socket.create_connection(("127.0.0.11", 53), timeout=10) as sock:
            sock.sendall(len(header_only).to_bytes(2, "big") + header_only)
            return sock.recv(512)
    assert DNSRecord.parse(_inside(containers["c1"], tcp_garbage)[2:]).header.rcode == RCODE.FORMERR
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]


def test_stop_closes_the_sockets_and_serve_opens_them_again(world) -> None:
    side, make, containers = world
    resolver = make([UPSTREAM])
    side.call(resolver.serve("c1", str(containers["c1"])))
    client = _inside(containers["c1"], lambda: socket.create_connection(("127.0.0.11", 53), 10))
    try:
        packet = bytes(DNSRecord.question("web").pack())
        client.sendall(len(packet).to_bytes(2, "big") + packet)
        assert client.recv(512)  # answered: the connection is the server's now
        side.call(resolver.stop("c1"))
        assert client.recv(512) == b""  # an open TCP connection is closed too
    finally:
        client.close()
    with pytest.raises(ConnectionRefusedError):
        query(containers["c1"], "web", tcp=True)

    def udp_query() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # connected: sees ICMP
            sock.settimeout(10)
            sock.connect(("127.0.0.11", 53))
            sock.send(DNSRecord.question("web").pack())
            return sock.recv(512)
    with pytest.raises(ConnectionRefusedError):
        _inside(containers["c1"], udp_query)
    side.call(resolver.serve("c1", str(containers["c1"])))
    side.call(resolver.serve("c1", str(containers["c1"])))  # serving again replaces, no EADDRINUSE
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]


def test_lookups_are_remembered_until_forget_and_serve_or_stop(world) -> None:
    side, make, containers = world
    table = {"web": [IPv4Address("172.18.0.2")]}
    asked: list[str] = []

    def names(container_id: str, name: str) -> list[IPv4Address]:
        asked.append(name)
        return table.get(name, [])

    resolver = make([UPSTREAM], names)
    side.call(resolver.serve("c1", str(containers["c1"])))
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]
    assert addresses(query(containers["c1"], "web", tcp=True)) == ["172.18.0.2"]
    assert asked == ["web"]
    table["web"] = [IPv4Address("172.18.0.9")]

    async def forget() -> None:
        resolver.forget()
    side.call(forget())
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.9"]
    del table["web"]
    side.call(resolver.serve("c2", str(containers["c2"])))  # another container starts
    assert query(containers["c1"], "web").header.rcode == RCODE.NXDOMAIN  # forwarded: unknown
    assert asked == ["web", "web", "web"]


def test_a_containers_own_upstreams_replace_the_hosts(world) -> None:
    side, make, containers = world
    resolver = make([UNREACHABLE])
    side.call(resolver.serve("c1", str(containers["c1"]), upstreams=[SILENT, UPSTREAM]))
    side.call(resolver.serve("c2", str(containers["c2"])))
    assert addresses(query(containers["c1"], "api.upstream.test")) == ["10.9.9.9"]
    assert query(containers["c2"], "api.upstream.test").header.rcode == RCODE.SERVFAIL


def test_forwards_past_the_limit_get_servfail_at_once(world) -> None:
    side, make, containers = world
    resolver = make([SILENT], timeout=60, max_forwards=1)
    side.call(resolver.serve("c1", str(containers["c1"])))
    waiting = DNSRecord.question("first.upstream.test")
    second = DNSRecord.question("second.upstream.test")

    def two_queries() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(10)
            sock.connect(("127.0.0.11", 53))
            sock.send(waiting.pack())  # its upstream never answers: it holds the one slot
            sock.send(second.pack())
            return sock.recv(512)
    reply = DNSRecord.parse(_inside(containers["c1"], two_queries))
    assert (reply.header.id, reply.header.rcode) == (second.header.id, RCODE.SERVFAIL)
    side.call(resolver.stop("c1"))  # cancels the forward still waiting


def test_a_failing_lookup_gets_servfail_and_serving_goes_on(world) -> None:
    side, make, containers = world

    def names(container_id: str, name: str) -> list[IPv4Address]:
        if name == "broken":
            raise RuntimeError("a bug in the engine's lookup")
        return lookup(container_id, name)

    resolver = make([UPSTREAM], names)
    side.call(resolver.serve("c1", str(containers["c1"])))
    for tcp in (False, True):
        assert query(containers["c1"], "broken", tcp=tcp).header.rcode == RCODE.SERVFAIL
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]



def test_no_upstreams_answers_servfail_at_once(world) -> None:
    side, make, containers = world
    resolver = make([UPSTREAM])
    side.call(resolver.serve("c1", str(containers["c1"]), upstreams=[]))
    for tcp in (False, True):
        assert query(containers["c1"], "api.upstream.test", tcp=tcp).header.rcode == \
            RCODE.SERVFAIL
    assert addresses(query(containers["c1"], "web")) == ["172.18.0.2"]


def test_one_resolver_serves_many_namespaces_each_with_its_own_view(world, tmp_path) -> None:
    side, make, _ = world

    def names(container_id: str, name: str) -> list[IPv4Address]:
        return [IPv4Address(f"10.0.0.{int(container_id[1:]) + 1}")] if name == "me" else []

    resolver = make([UPSTREAM], names)
    paths = [tmp_path / f"n{i}" for i in range(12)]
    try:
        for i, path in enumerate(paths):
            netns.create(path)
            side.call(resolver.serve(f"n{i}", str(path)))
        for i, path in enumerate(paths):
            assert addresses(query(path, "me", tcp=i % 2 == 1)) == [f"10.0.0.{i + 1}"]
    finally:
        side.call(resolver.close())
        for path in paths:
            netns.remove(path)
