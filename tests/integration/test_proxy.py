"""The userland proxy ([::1]:H -> an IPv4 server: TCP with half-close, UDP flows) and port
holders, run in a network namespace of the test's own."""
from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tether.network.proxy import PortHolder, UserlandProxy

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run fn in a thread that joined netns `name`: its sockets live there, the test's don't."""
    result: list[Any] = []

    def work() -> None:
        try:
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            result.append((False, exc))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"tether-t-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


async def _tcp_upper_server() -> tuple[asyncio.Server, int, list[bytes]]:
    """An IPv4 server that answers everything it read, upper-cased, once the client half-closes,
    then closes: it only answers if the proxy passed the half-close on."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        seen.append(data)
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def _tcp_round(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("::1", port)
    writer.write(b"hello " * 20000)  # larger than one buffer
    writer.write_eof()
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return reply


def _free_port(family: socket.AddressFamily, kind: socket.SocketKind) -> int:
    with socket.socket(family, kind) as sock:
        sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tcp_proxy_splices_and_passes_the_half_close(netns):
    async def scenario() -> None:
        server, target, seen = await _tcp_upper_server()
        host_port = _free_port(socket.AF_INET6, socket.SOCK_STREAM)
        proxy = UserlandProxy("tcp", "::1", host_port, "127.0.0.1", target)
        await proxy.start()
        try:
            replies = await asyncio.gather(*(_tcp_round(host_port) for _ in range(3)))
            assert replies == [b"HELLO " * 20000] * 3
            assert seen == [b"hello " * 20000] * 3
        finally:
            await proxy.stop()
            server.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("::1", host_port)

    in_netns(netns, lambda: asyncio.run(scenario()))


def test_tcp_proxy_resets_the_client_when_the_container_refuses(netns):
    async def scenario() -> bytes:
        dead = _free_port(socket.AF_INET, socket.SOCK_STREAM)
        host_port = _free_port(socket.AF_INET6, socket.SOCK_STREAM)
        proxy = UserlandProxy("tcp", "::1", host_port, "127.0.0.1", dead)
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection("::1", host_port)
            try:
                return await asyncio.wait_for(reader.read(), 5)
            finally:
                writer.close()
        finally:
            await proxy.stop()

    try:
        assert in_netns(netns, lambda: asyncio.run(scenario())) == b""
    except ConnectionResetError:
        pass  # the reset may surface as an error instead of EOF: either way, no hang


def test_tcp_proxy_stop_cuts_open_connections(netns):
    async def scenario() -> None:
        server, target, _ = await _tcp_upper_server()
        host_port = _free_port(socket.AF_INET6, socket.SOCK_STREAM)
        proxy = UserlandProxy("tcp", "::1", host_port, "127.0.0.1", target)
        await proxy.start()
        reader, writer = await asyncio.open_connection("::1", host_port)
        writer.write(b"pending")
        await writer.drain()
        await asyncio.sleep(0.1)
        await asyncio.wait_for(proxy.stop(), 5)
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            pass
        writer.close()
        server.close()

    in_netns(netns, lambda: asyncio.run(scenario()))


class _UdpEcho(asyncio.DatagramProtocol):
    """Answers `<data> from <port>` so a test sees which upstream socket a datagram used."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.transport.sendto(data + f" from {addr[1]}".encode(), addr)


def test_udp_proxy_keeps_a_flow_per_client_and_expires_it(netns):
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        echo, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
        target = echo.get_extra_info("sockname")[1]
        host_port = _free_port(socket.AF_INET6, socket.SOCK_DGRAM)
        proxy = UserlandProxy("udp", "::1", host_port, "127.0.0.1", target, udp_idle_timeout=0.5)
        await proxy.start()
        clients = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            sources = []
            for n, client in enumerate(clients):
                client.setblocking(False)
                for i in range(2):
                    await loop.sock_sendto(client, f"c{n}-{i}".encode(), ("::1", host_port))
                    data, peer = await asyncio.wait_for(loop.sock_recvfrom(client, 4096), 5)
                    assert peer[1] == host_port  # the reply comes from the published address
                    text, source = data.decode().split(" from ")
                    assert text == f"c{n}-{i}"
                    sources.append(source)
            assert sources[0] == sources[1] and sources[2] == sources[3]  # one flow per client
            assert sources[0] != sources[2]
            assert proxy.udp_flows == 2
            await asyncio.sleep(1.0)
            assert proxy.udp_flows == 0  # idle flows end
            await loop.sock_sendto(clients[0], b"again", ("::1", host_port))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(clients[0], 4096), 5)
            assert data.startswith(b"again from ")
        finally:
            for client in clients:
                client.close()
            await proxy.stop()
            echo.close()
        assert proxy.udp_flows == 0

    in_netns(netns, lambda: asyncio.run(scenario()))


def test_proxy_refuses_sctp_and_a_taken_address(netns):
    with pytest.raises(ValueError):
        UserlandProxy("sctp", "::", 80, "127.0.0.1", 80)

    async def scenario() -> None:
        with socket.socket(socket.AF_INET6) as other:
            other.bind(("::1", 0))
            other.listen()
            proxy = UserlandProxy("tcp", "::1", other.getsockname()[1], "127.0.0.1", 80)
            with pytest.raises(OSError):
                await proxy.start()

    in_netns(netns, lambda: asyncio.run(scenario()))


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_holder_keeps_other_processes_out_until_closed(netns, proto):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM

    def scenario() -> None:
        port = _free_port(socket.AF_INET, kind)
        holder = PortHolder(proto, "0.0.0.0", port)
        try:
            for ip in ("0.0.0.0", "127.0.0.1"):
                with socket.socket(socket.AF_INET, kind) as other:
                    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    with pytest.raises(OSError):
                        other.bind((ip, port))
            with socket.socket(socket.AF_INET6, kind) as v6:  # the IPv6 port stays free
                v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                v6.bind(("::", port))
        finally:
            holder.close()
        with socket.socket(socket.AF_INET, kind) as other:
            other.bind(("0.0.0.0", port))

    in_netns(netns, scenario)


def test_holder_binds_over_time_wait(netns):
    def scenario() -> None:
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = server.accept()
            conn.close()  # server side closes first: TIME_WAIT on the published port
            client.recv(1)
            client.close()
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))  # TIME_WAIT blocks a bind without SO_REUSEADDR
        holder = PortHolder("tcp", "127.0.0.1", port)
        try:
            with socket.socket() as other, pytest.raises(OSError):
                other.bind(("127.0.0.1", port))
        finally:
            holder.close()

    in_netns(netns, scenario)
