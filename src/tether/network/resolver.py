"""The embedded DNS resolver: one in the daemon, listening at 127.0.0.11:53 inside every container
namespace that asks for it.

Sockets belong to the namespace they were made in, not to the thread that uses them, so a
short-lived thread joins the container's namespace, makes and binds a UDP and a TCP socket there,
and hands them to the daemon's event loop; from then on they are served like any other socket, and
the daemon never runs a process or a thread per container. Answers come from `dns.answer` with
the container's own view of names (`Lookup`, `Reverse`, given by the container service); unknown
names are forwarded from the daemon's own namespace (where the host's resolv.conf servers, even a
loopback one, are reachable), with a short timeout and SERVFAIL when no upstream answers, so a
container without a route out fails fast instead of hanging. (Docker forwards from the
container's namespace; doing so here made failing fast depend on ICMP errors, which the kernel
rate-limits, so a query waited for its timeout and busybox `nslookup` gave up first.)
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import struct
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv6Address
from typing import Callable, Coroutine

from tether.network import dns, netns

ADDRESS = "127.0.0.11"
PORT = 53
UPSTREAM_TIMEOUT = 2.0  # seconds an upstream gets before the next one is asked (Docker: 4)
MAX_UPSTREAMS = 3  # upstreams tried per query, the first ones listed (Docker and glibc: 3)
TCP_IDLE = 10.0  # seconds a client's TCP connection may sit idle between queries
TCP_BACKLOG = 64
UDP_MAX = 65535  # the largest UDP payload: a query is never cut by our buffer
UDP_BATCH = 64  # datagrams read at one wake-up before other work gets its turn
MEMO_SIZE = 4096  # remembered lookups; all are dropped when there are more
MAX_FORWARDS = 100  # queries waiting on upstreams at once; more get SERVFAIL (Docker: 100 too)

Lookup = Callable[[str, str], "list[IPv4Address | IPv6Address]"]
Reverse = Callable[[str, "IPv4Address | IPv6Address"], "str | None"]
log = logging.getLogger("tether.network.resolver")


def _listening_sockets(netns_path: str) -> tuple[socket.socket, socket.socket]:
    """A bound UDP socket and a listening TCP socket at 127.0.0.11:53 in the namespace at
    `netns_path`; runs in a thread of its own (see `netns.in_own_thread`)."""
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        netns.enter(fd)
    finally:
        os.close(fd)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((ADDRESS, PORT))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((ADDRESS, PORT))
        tcp.listen(TCP_BACKLOG)
        udp.setblocking(False)
        tcp.setblocking(False)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


class _ReplyCatcher(asyncio.DatagramProtocol):
    """The one reply a forwarded UDP query waits for (matched by the query's id)."""

    def __init__(self, query_id: bytes) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if data[:2] == self.query_id and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _ask_udp(server: str, packet: bytes, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    transport, catcher = await loop.create_datagram_endpoint(
        lambda: _ReplyCatcher(packet[:2]), remote_addr=(server, PORT))
    try:
        transport.sendto(packet)
        return await asyncio.wait_for(catcher.reply, timeout)
    finally:
        transport.close()


async def _ask_tcp(server: str, packet: bytes, timeout: float) -> bytes:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(server, PORT)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()


class _UdpServer:
    """Queries to one container's 127.0.0.11:53/udp: answered at once, or forwarded in a task.

    A plain reader callback rather than an asyncio datagram transport: the transport receives
    into a fresh 256 KiB buffer per datagram, which glibc serves with mmap and munmap each time
    and which halved the query rate; this reads into at most a UDP datagram's 64 KiB, drains what
    is queued at each wake-up, and drops a reply the socket cannot take at once (the client asks
    again, as for any lost datagram) instead of buffering it.
    """

    def __init__(self, resolver: EmbeddedResolver, container_id: str, sock: socket.socket) -> None:
        self.resolver = resolver
        self.container_id = container_id
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, addr = self.sock.recvfrom(UDP_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error for an earlier reply: that client went away
                continue
            result = self.resolver.answer(self.container_id, data)
            if isinstance(result, dns.Forward):
                self.resolver.spawn(self.container_id, self._forward(result.packet, addr))
            elif result is not None:
                self._send(dns.fit_udp(result, data), addr)

    async def _forward(self, packet: bytes, addr: tuple[str, int]) -> None:
        """The upstream's reply goes back as it came: the query went out unchanged, EDNS size
        included, so the upstream already kept to what the client takes."""
        reply = await self.resolver.forward(self.container_id, packet, tcp=False)
        if reply is not None:
            self._send(reply, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.sock.fileno() < 0:
            return
        with contextlib.suppress(OSError):
            self.sock.sendto(data, addr)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


@dataclass
class _Listener:
    """What one container's resolver holds: its UDP server, TCP server and live connections."""

    udp: _UdpServer
    tcp: asyncio.Server
    upstreams: list[str]
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    tasks: set[asyncio.Task] = field(default_factory=set)


class EmbeddedResolver:
    """127.0.0.11:53 (UDP and TCP) in each served container's namespace, all on one event loop."""

    def __init__(self, lookup: Lookup, reverse: Reverse, upstreams: list[str],
                 timeout: float = UPSTREAM_TIMEOUT, max_forwards: int = MAX_FORWARDS) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.max_forwards = max_forwards
        self._forwarding = 0
        self._listeners: dict[str, _Listener] = {}
        self._cache = dns.ReplyCache()
        self._names_seen: dict[tuple[str, str], list[IPv4Address | IPv6Address]] = {}
        self._addresses_seen: dict[tuple[str, IPv4Address | IPv6Address], str | None] = {}

    async def serve(self, container_id: str, netns_path: str,
                    upstreams: list[str] | None = None) -> None:
        """Start answering inside the namespace at `netns_path`; serving again replaces the old
        sockets (a restarted container has a new namespace). `upstreams` are the container's
        own `--dns` servers, which on a user network take unknown names instead of the host's
        (its resolv.conf names only 127.0.0.11, as in Docker); `[]` forwards nothing (a
        container only on `--internal` networks, which in Docker cannot reach an upstream)."""
        await self.stop(container_id)
        udp_sock, tcp_sock = netns.in_own_thread(lambda: _listening_sockets(netns_path),
                                                 "dns-listen")
        udp = _UdpServer(self, container_id, udp_sock)
        try:
            tcp = await asyncio.start_server(
                lambda r, w: self._serve_tcp(container_id, r, w), sock=tcp_sock)
        except BaseException:
            udp.close()
            tcp_sock.close()
            raise
        servers = self.upstreams if upstreams is None else upstreams
        self._listeners[container_id] = _Listener(udp, tcp, list(servers)[:MAX_UPSTREAMS])
        log.debug("embedded DNS serving", extra={"ctx": {"container": container_id[:12]}})

    async def stop(self, container_id: str) -> None:
        """Close the container's sockets, its clients' connections and its pending forwards."""
        self.forget()
        listener = self._listeners.pop(container_id, None)
        if listener is None:
            return
        listener.udp.close()
        listener.tcp.close()
        for writer in list(listener.connections):
            writer.close()
        for task in list(listener.tasks):
            task.cancel()
        await asyncio.gather(*listener.tasks, return_exceptions=True)
        await listener.tcp.wait_closed()

    async def close(self) -> None:
        for container_id in list(self._listeners):
            await self.stop(container_id)

    # ---- answers ------------------------------------------------------------------------

    def forget(self) -> None:
        """Drop the remembered lookups: containers' names or addresses changed. The daemon
        calls it on every event of its engine (start, die, rename, network connect...), and
        `serve` and `stop` call it themselves, so a container's names come and go with it."""
        self._names_seen.clear()
        self._addresses_seen.clear()

    def _names(self, container_id: str, name: str) -> list[IPv4Address | IPv6Address]:
        """`lookup`, remembered until `forget`: the engine's lookup walks every container, far
        too slow to run per query. Several addresses come in a new order each time, as Docker
        shuffles them, so clients that take the first spread over them."""
        key = (container_id, name)
        found = self._names_seen.get(key)
        if found is None:
            if len(self._names_seen) >= MEMO_SIZE:
                self._names_seen.clear()
            found = self._names_seen[key] = self.lookup(container_id, name)
        return random.sample(found, len(found)) if len(found) > 1 else found

    def _address(self, container_id: str, ip: IPv4Address | IPv6Address) -> str | None:
        key = (container_id, ip)
        if key not in self._addresses_seen:
            if len(self._addresses_seen) >= MEMO_SIZE:
                self._addresses_seen.clear()
            self._addresses_seen[key] = self.reverse(container_id, ip)
        return self._addresses_seen[key]

    def answer(self, container_id: str, packet: bytes) -> bytes | dns.Forward | None:
        """The reply to one query from `container_id`, with that container's view of names;
        SERVFAIL when the engine's lookup fails, so a client is told at once, and the failure
        is logged instead of ending the socket's reader."""
        try:
            return self._cache.answer(packet, partial(self._names, container_id),
                                      partial(self._address, container_id))
        except Exception:
            log.exception("embedded DNS lookup failed",
                          extra={"ctx": {"container": container_id[:12]}})
            return dns.servfail(packet)

    async def forward(self, container_id: str, packet: bytes, tcp: bool) -> bytes | None:
        """The reply of the container's first upstream that answers `packet` in time, or
        SERVFAIL; SERVFAIL at once when `max_forwards` queries already wait, so a container
        asking for unknown names in a loop cannot pile up sockets and tasks in the daemon."""
        listener = self._listeners.get(container_id)
        if listener is None or self._forwarding >= self.max_forwards:
            return dns.servfail(packet)
        ask = _ask_tcp if tcp else _ask_udp
        self._forwarding += 1
        try:
            for server in listener.upstreams:
                try:
                    return await ask(server, packet, self.timeout)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error) as exc:
                    log.debug("upstream DNS failed",
                              extra={"ctx": {"server": server, "error": exc}})
        finally:
            self._forwarding -= 1
        return dns.servfail(packet)

    def spawn(self, container_id: str, work: Coroutine[object, object, None]) -> None:
        """Run a forward as a task the container's `stop` can cancel."""
        listener = self._listeners.get(container_id)
        if listener is None:  # stopped meanwhile: nobody to answer
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        listener.tasks.add(task)
        task.add_done_callback(listener.tasks.discard)

    # ---- TCP ----------------------------------------------------------------------------

    async def _serve_tcp(self, container_id: str, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        """Length-prefixed queries on one connection, answered in order until the client
        closes, sends garbage or stays idle for `TCP_IDLE` seconds."""
        listener = self._listeners.get(container_id)
        if listener is None:
            writer.close()
            return
        listener.connections.add(writer)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    packet = await reader.readexactly(size)
                result = self.answer(container_id, packet)
                if isinstance(result, dns.Forward):
                    result = await self.forward(container_id, result.packet, tcp=True)
                if result is None:
                    break
                writer.write(struct.pack("!H", len(result)) + result)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            listener.connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
