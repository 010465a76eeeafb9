"""Address management for the default bridge (pure: no kernel, no files).

Docker 20.10 is the model: the bridge takes the first of its default /16 pools that overlaps
nothing the host already uses (an address or a route), the gateway is the subnet's first host,
and each container gets the lowest free address, so an address freed by a stopped container is
the next one handed out (checked against the reference engine: with .3 running and .2 removed,
the next container gets .2). The MAC address is derived from the IP, as Docker did before 23.0,
so that a container's MAC is predictable from its address.
"""
from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

DEFAULT_POOLS: tuple[IPv4Network, ...] = tuple(
    IPv4Network(f"172.{second}.0.0/16") for second in range(17, 32))


Address = IPv4Address | IPv6Address


class IPAMError(ValueError):
    """No subnet or address can be given; the message is meant for the user."""


def _parse_bip(bip: str) -> tuple[IPv4Network, IPv4Address]:
    """`--bip 172.20.0.1/16`: the bridge's own address and, through its prefix, the subnet."""
    try:
        interface = ipaddress.IPv4Interface(bip)
    except ValueError as exc:
        raise IPAMError(f"invalid --bip {bip!r}: {exc}") from None
    subnet, gateway = interface.network, interface.ip
    if subnet.num_addresses > 2 and gateway in (subnet.network_address, subnet.broadcast_address):
        raise IPAMError(f"invalid --bip {bip!r}: {gateway} is not a host address of {subnet}")
    return subnet, gateway


def choose_subnet(in_use: list[IPv4Network],
                  bip: str | None = None) -> tuple[IPv4Network, IPv4Address]:
    """The bridge's subnet and gateway: `--bip` as given, else the first default pool that is free.

    `in_use` holds the networks of the host's addresses and routes; a default route (/0) says
    nothing about which addresses are taken, so it never blocks a pool.
    """
    if bip is not None:
        return _parse_bip(bip)
    taken = [net for net in in_use if net.prefixlen > 0]
    for pool in DEFAULT_POOLS:
        if not any(pool.overlaps(net) for net in taken):
            return pool, pool.network_address + 1
    raise IPAMError("could not find an available, non-overlapping IPv4 address pool among the "
                    "defaults to assign to the network")


class IPAM:
    """The addresses of one subnet (IPv4 or IPv6): which are handed out, and the lowest free one.

    Addresses are kept as offsets from the network address. `_hint` is a lower bound on the
    lowest free offset, so allocation does not rescan the taken prefix every time.
    """

    def __init__(self, subnet: IPv4Network | IPv6Network, gateway: IPv4Address | IPv6Address,
                 pool: IPv4Network | IPv6Network | None = None) -> None:
        if gateway not in subnet:
            raise IPAMError(f"gateway {gateway} is not in {subnet}")
        self.subnet = subnet
        self.gateway = gateway
        # /31 and /32 have no network or broadcast address (RFC 3021): every address is a host.
        small = subnet.num_addresses <= 2
        self._first = 0 if small else 1
        self._last = subnet.num_addresses - (1 if small else 2)
        self._used: set[int] = {self._offset(gateway)}
        # `--ip-range`: dynamic addresses come from the pool only (from its first address, as
        # Docker does); a static `--ip` may be any host address of the subnet.
        self._pool_first, self._pool_last = self._first, self._last
        if pool is not None:
            self._pool_first = max(self._first, self._offset(pool.network_address))
            self._pool_last = min(self._last, self._offset(pool.broadcast_address))
        self._hint = self._pool_first

    def _offset(self, address: Address) -> int:
        return int(address) - int(self.subnet.network_address)

    def _host_offset(self, address: Address) -> int:
        """The offset of a container address: a host address of the subnet, not the gateway."""
        offset = self._offset(address)
        if address not in self.subnet or address == self.gateway \
                or not self._first <= offset <= self._last:
            raise IPAMError(f"{address} is not a container address of {self.subnet}")
        return offset

    def _address(self, offset: int) -> Address:
        return self.subnet.network_address + offset

    def allocate(self) -> Address:
        """The lowest free host address, now marked in use."""
        offset = max(self._hint, self._pool_first)
        while offset <= self._pool_last and offset in self._used:
            offset += 1
        if offset > self._pool_last:
            raise IPAMError(f"no available IPv{self.subnet.version} addresses in {self.subnet}")
        self._used.add(offset)
        self._hint = offset + 1
        return self._address(offset)

    def reserve(self, address: Address) -> None:
        """Mark an address a running container already holds (daemon restart)."""
        offset = self._host_offset(address)
        if offset in self._used:
            raise IPAMError(f"{address} is already in use in {self.subnet}")
        self._used.add(offset)

    def release(self, address: Address) -> None:
        """Give an address back. Releasing a free address is harmless (clean-up after a crash may
        not know what was handed out); the gateway or a foreign address is a caller's bug."""
        offset = self._host_offset(address)
        self._used.discard(offset)
        self._hint = max(min(self._hint, offset), self._pool_first)


def mac_derived_ipv6(subnet: IPv6Network, mac: str) -> IPv6Address | None:
    """The default bridge's container address under `--fixed-cidr-v6` as Docker 20.10 makes it
    (checked on the reference engine: 2001:db8:1::242:ac11:2 for 02:42:ac:11:00:02): the prefix
    with the MAC in its last 48 bits, when the prefix leaves room for them (/80 or shorter);
    None: take the lowest free address instead."""
    if subnet.prefixlen > 80:
        return None
    return subnet.network_address + int(mac.replace(":", ""), 16)


def mac_address(ip: IPv4Address) -> str:
    """Docker 20.10's container MAC: 02:42 then the four bytes of the IPv4 address."""
    return ":".join(f"{byte:02x}" for byte in (0x02, 0x42, *ip.packed))
