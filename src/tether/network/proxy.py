"""Port holders and the in-daemon userland proxy.

NAT serves every IPv4 published port in the kernel. Two things remain for user space:
- `PortHolder`: the daemon keeps a bound socket on every published host port so no other process
  can take it while it is published (Docker's docker-proxy holds it by listening). The socket is
  bound but never listening: DNAT rewrites a connection's destination before the socket lookup,
  so the holder never sees a packet of it.
- `UserlandProxy`: IPv6 host addresses (`[::]` bindings) to an IPv4-only container, where NAT
  cannot translate between families, and `[::1]` to a container's IPv6 address, which the
  kernel cannot DNAT (IPv6 has no route_localnet). TCP splices both directions and propagates half-closes;
  UDP keeps one upstream socket per client address, closed after `udp_idle_timeout` seconds
  without traffic (Docker's 90 s).
"""
from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass, field
from typing import cast

from tether.network.portalloc import family_of

BUFFER = 65536
UDP_IDLE_TIMEOUT = 90.0


def _bound_socket(proto: str, host_ip: str, port: int, reuse: bool) -> socket.socket:
    """A socket bound to host_ip:port; IPv6 ones are V6ONLY so `::` leaves IPv4 alone."""
    family = family_of(host_ip)
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, kind, socket.IPPROTO_SCTP if proto == "sctp" else 0)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host_ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


class PortHolder:
    """Keeps host_ip:port/proto bound until close().

    A TCP holder is bound without SO_REUSEADDR, because two sockets that both set it may share a
    port (a server would then start on a published port). Only when that fails (connections of
    an earlier server still in TIME_WAIT) does it bind with SO_REUSEADDR, which still keeps out
    every listener. Without SCTP in the kernel nothing can take an SCTP port, so nothing is held.
    Raises OSError when the port cannot be bound.
    """

    def __init__(self, proto: str, host_ip: str, port: int) -> None:
        self._sock: socket.socket | None = None
        try:
            self._sock = _bound_socket(proto, host_ip, port, reuse=False)
        except OSError as exc:
            if proto == "sctp" and exc.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
                return
            if proto != "tcp" or exc.errno != errno.EADDRINUSE:
                raise
            self._sock = _bound_socket(proto, host_ip, port, reuse=True)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class UserlandProxy:
    """Forwards host_ip:host_port/proto to container_ip:container_port, in the daemon's loop."""

    def __init__(self, proto: str, host_ip: str, host_port: int, container_ip: str,
                 container_port: int, udp_idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        if proto not in ("tcp", "udp"):
            raise ValueError(f"the userland proxy does not carry {proto}")
        self.proto = proto
        self.listen = (host_ip, host_port)
        self.target = (container_ip, container_port)
        self._idle = udp_idle_timeout
        self._server: asyncio.Server | None = None
        self._udp: _UdpListener | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be bound."""
        sock = _bound_socket(self.proto, *self.listen, reuse=self.proto == "tcp")
        if self.proto == "tcp":
            self._server = await asyncio.start_server(self._accepted, sock=sock, limit=BUFFER)
            return
        loop = asyncio.get_running_loop()
        _, self._udp = await loop.create_datagram_endpoint(
            lambda: _UdpListener(self.target, self._idle), sock=sock)

    async def stop(self) -> None:
        """Stop listening and cut every connection or flow."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    @property
    def udp_flows(self) -> int:
        """How many UDP clients have a live upstream flow (0 for TCP)."""
        return self._udp.flow_count() if self._udp is not None else 0

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        """Connect upstream and splice; a failed connect or a reset cuts the client off (RST)."""
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target, limit=BUFFER)
        except OSError:
            client_w.transport.abort()
            return
        except asyncio.CancelledError:
            client_w.transport.abort()
            raise
        pumps = [asyncio.create_task(_pump(client_r, upstream_w)),
                 asyncio.create_task(_pump(upstream_r, client_w))]
        clean = False
        try:
            await asyncio.gather(*pumps)
            clean = True
        finally:
            for task in pumps:
                task.cancel()
            for writer in (client_w, upstream_w):
                if clean:
                    writer.close()
                else:
                    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on (the other direction keeps flowing)."""
    while data := await reader.read(BUFFER):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


@dataclass
class _Flow:
    """One client address: its connected upstream socket, packets that arrived before it was
    ready, and the timer that ends it when idle."""

    pending: list[bytes] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    timer: asyncio.TimerHandle | None = None


class _UdpListener(asyncio.DatagramProtocol):
    """The proxy's listening UDP socket: datagrams from each client go out of that client's
    own upstream socket, and the container's replies come back from the proxy's address."""

    def __init__(self, target: tuple[str, int], idle: float) -> None:
        self._target = target
        self._idle = idle
        self._flows: dict[tuple, _Flow] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        flow = self._flows.get(addr)
        if flow is None:
            flow = self._flows[addr] = _Flow()
            task = asyncio.get_running_loop().create_task(self._open(addr, flow))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
        self._touch(addr, flow)
        if flow.transport is None:
            flow.pending.append(data)
        else:
            flow.transport.sendto(data)

    async def _open(self, addr: tuple, flow: _Flow) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Upstream(self, addr), remote_addr=self._target)
        except OSError:
            self.end(addr)
            return
        if self._flows.get(addr) is not flow:  # ended while connecting
            transport.close()
            return
        flow.transport = transport
        for data in flow.pending:
            transport.sendto(data)
        flow.pending.clear()

    def reply(self, addr: tuple, data: bytes) -> None:
        flow = self._flows.get(addr)
        if flow is None or self._transport is None:
            return
        self._touch(addr, flow)
        self._transport.sendto(data, addr)

    def _touch(self, addr: tuple, flow: _Flow) -> None:
        if flow.timer is not None:
            flow.timer.cancel()
        flow.timer = asyncio.get_running_loop().call_later(self._idle, self.end, addr)

    def end(self, addr: tuple) -> None:
        flow = self._flows.pop(addr, None)
        if flow is None:
            return
        if flow.timer is not None:
            flow.timer.cancel()
        if flow.transport is not None:
            flow.transport.close()

    def flow_count(self) -> int:
        return len(self._flows)

    def close(self) -> None:
        for task in self._opening:
            task.cancel()
        for addr in list(self._flows):
            self.end(addr)
        if self._transport is not None:
            self._transport.close()


class _Upstream(asyncio.DatagramProtocol):
    """A flow's socket connected to the container: replies go back to the flow's client."""

    def __init__(self, listener: _UdpListener, client: tuple) -> None:
        self._listener = listener
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._listener.reply(self._client, data)

    def error_received(self, exc: Exception) -> None:
        """ICMP unreachable from the container: nothing listens there; end the flow."""
        self._listener.end(self._client)
