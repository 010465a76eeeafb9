"""Host port allocation: Docker's sequential cursor, plus a real bind() check before a promise.

Docker hands out "random" ports from a cursor per (host IP, protocol, range): the first ephemeral
port is the start of the kernel's ip_local_port_range, then the next one, and a freed port is not
reused before the cursor wraps (moby#34310). Clients and tests rely on that order, so it is kept.
Docker only learns that a port is taken by another process when its proxy fails to listen; tether
asks the kernel first, so a range request skips a busy port instead of failing, and an exact
request fails with Docker's own words before anything is half set up.

Records are per (protocol, host IP). `0.0.0.0` stands for every IPv4 address and `::` for every
IPv6 address, so a port recorded on one of them is taken for every specific address of that family
and the other way round. One request may name several host IPs (`0.0.0.0` and `::` for a binding
without an IP): they all get the same port.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable

from tether.rules.errors import ApiError, go_errno_text

ANY_V4 = "0.0.0.0"
ANY_V6 = "::"
# Used by Docker when the kernel's range cannot be read (daemon/libnetwork/portallocator).
FALLBACK_EPHEMERAL = (49153, 65535)
_PROTOCOLS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM, "sctp": socket.SOCK_STREAM}
_NO_PROTOCOL = (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.EAFNOSUPPORT)


class PortError(ApiError):
    """Allocation failed; the message is the inner text of Docker's "driver failed programming
    external connectivity" error, which the caller wraps with the endpoint's name."""

    status = 500


def read_ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """The kernel's ephemeral range, read once at daemon start as Docker does; Docker's fallback
    when the file is missing or makes no sense."""
    try:
        with open(path, encoding="ascii") as f:
            low, high = (int(part) for part in f.read().split())
    except (OSError, ValueError):
        return FALLBACK_EPHEMERAL
    if not 0 < low <= high <= 65535:
        return FALLBACK_EPHEMERAL
    return low, high


def family_of(host_ip: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an address in text form."""
    return socket.AF_INET6 if ipaddress.ip_address(host_ip).version == 6 else socket.AF_INET


def can_bind(proto: str, host_ip: str, port: int) -> bool:
    """Whether `host_ip:port/proto` can really be bound now; the test socket is closed at once.

    TCP uses SO_REUSEADDR so that connections in TIME_WAIT do not make a port look busy (a
    listener or a socket bound without SO_REUSEADDR, such as tether's own holders, still does).
    IPv6 sockets are V6ONLY: `::` does not claim the IPv4 port. A kernel without SCTP cannot
    have the port taken, so it counts as free. False means "address in use"; any other failure
    (an address that is not local, say) is not about the port and is raised as the OSError.
    """
    family = family_of(host_ip)
    sock_proto = socket.IPPROTO_SCTP if proto == "sctp" else 0
    try:
        sock = socket.socket(family, _PROTOCOLS[proto], sock_proto)
    except OSError as exc:
        if proto == "sctp" and exc.errno in _NO_PROTOCOL:
            return True
        raise
    with sock:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((host_ip, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _go_host_port(host_ip: str, port: int) -> str:
    """`net.JoinHostPort`: IPv6 in brackets."""
    return f"[{host_ip}]:{port}" if ":" in host_ip else f"{host_ip}:{port}"


def _already_allocated(host_ip: str, port: int) -> PortError:
    # Docker prints the IP and port with a bare colon, so `::` gives `:::8080`.
    return PortError(f"Bind for {host_ip}:{port} failed: port is already allocated")


def _in_use(proto: str, host_ip: str, port: int,
            reason: str = "address already in use") -> PortError:
    """Docker 20.10's text when its proxy cannot listen: the port is held outside its records."""
    version = "6" if family_of(host_ip) == socket.AF_INET6 else "4"
    return PortError(f"Error starting userland proxy: listen {proto}{version} "
                     f"{_go_host_port(host_ip, port)}: bind: {reason}")


def bind_failure(proto: str, host_ip: str, port: int, exc: OSError) -> PortError:
    """Docker 20.10's text for a host port that could not be bound (taken by another process,
    an address that is not local...)."""
    return _in_use(proto, host_ip, port, go_errno_text(exc))


class PortAllocator:
    """Tether's records of the host ports its containers hold (in memory; rebuilt with
    `reserve` after a restart, when the cursors start again from the range start, as Docker's)."""

    def __init__(self, ephemeral: tuple[int, int],
                 can_bind: Callable[[str, str, int], bool] = can_bind) -> None:
        self._ephemeral = ephemeral
        self._can_bind = can_bind
        self._taken: dict[tuple[str, str], set[int]] = {}
        self._cursors: dict[tuple[str, str, int, int], int] = {}

    def allocate(self, proto: str, host_ips: list[str], start: int = 0, end: int = 0) -> int:
        """One port free on every IP of `host_ips`: exactly `start` when start == end != 0, else
        the next one after the range's cursor (the ephemeral range when both are 0)."""
        ips = _normalise(host_ips)
        if start and start == end:
            self._check_exact(proto, ips, start)
            self._record(proto, ips, start)
            return start
        low, high = (start, end) if start else self._ephemeral
        port = self._search(proto, ips, low, high)
        self._record(proto, ips, port)
        for ip in ips:
            self._cursors[(proto, ip, low, high)] = port
        return port

    def release(self, proto: str, host_ips: list[str], port: int) -> None:
        """Forget the port on these IPs; the cursors stay, so it is not handed out again before
        they wrap around."""
        for ip in _normalise(host_ips):
            self._taken.get((proto, ip), set()).discard(port)

    def reserve(self, proto: str, host_ips: list[str], port: int) -> None:
        """Record a port a running container already holds (recovery after a daemon restart); no
        bind() check, since the port is in use by that very container's mapping."""
        ips = _normalise(host_ips)
        self._check_records(proto, ips, port)
        self._record(proto, ips, port)

    def _check_exact(self, proto: str, ips: list[str], port: int) -> None:
        """Docker's error for the first IP that cannot have the port, in request order."""
        for ip in ips:
            if port in self._taken.get((proto, ip), ()):
                raise _already_allocated(ip, port)
            if self._overlapping(proto, ip, port) or not self._bindable(proto, ip, port):
                raise _in_use(proto, ip, port)

    def _check_records(self, proto: str, ips: list[str], port: int) -> None:
        for ip in ips:
            if port in self._taken.get((proto, ip), ()) or self._overlapping(proto, ip, port):
                raise _already_allocated(ip, port)

    def _search(self, proto: str, ips: list[str], low: int, high: int) -> int:
        """Docker's findPort: from the first IP's cursor + 1, wrapping, the first port free in
        every record (and, tether's addition, bindable on every IP)."""
        port = self._cursors.get((proto, ips[0], low, high), high)
        for _ in range(high - low + 1):
            port = low if port >= high else port + 1
            if self._free(proto, ips, port):
                return port
        raise PortError("all ports are allocated")

    def _free(self, proto: str, ips: list[str], port: int) -> bool:
        for ip in ips:
            if port in self._taken.get((proto, ip), ()) or self._overlapping(proto, ip, port):
                return False
        return all(self._bindable(proto, ip, port) for ip in ips)

    def _overlapping(self, proto: str, ip: str, port: int) -> bool:
        """A record on another IP that covers this one: a wildcard and an address of its family."""
        return any(port in self._taken[(proto, other)] for other in _covering(ip, self._ips(proto)))

    def _ips(self, proto: str) -> Iterable[str]:
        return (ip for (p, ip) in self._taken if p == proto)

    def _bindable(self, proto: str, ip: str, port: int) -> bool:
        try:
            return self._can_bind(proto, ip, port)
        except OSError as exc:
            raise bind_failure(proto, ip, port, exc) from exc

    def _record(self, proto: str, ips: list[str], port: int) -> None:
        for ip in ips:
            self._taken.setdefault((proto, ip), set()).add(port)


def _covering(ip: str, recorded: Iterable[str]) -> list[str]:
    """The recorded IPs, other than `ip` itself, whose ports also block `ip`."""
    wildcard = ANY_V6 if ":" in ip else ANY_V4
    if ip == wildcard:
        return [other for other in recorded if other != ip and (":" in other) == (":" in ip)]
    return [other for other in recorded if other == wildcard]


def _normalise(host_ips: list[str]) -> list[str]:
    """Canonical text (`::0` and `::` are one record), order kept, duplicates dropped."""
    if not host_ips:
        raise ValueError("a port request needs at least one host IP")
    return list(dict.fromkeys(str(ipaddress.ip_address(ip.strip("[]"))) for ip in host_ips))
