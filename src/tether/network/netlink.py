"""The kernel side of the default bridge: the bridge device, veth pairs, addresses, routes, sysctls.

Everything goes through rtnetlink (pyroute2's IPRoute, no NDB) and /proc/sys: no `ip` process,
so wiring a container costs a few milliseconds. The bridge and the host ends of the veth pairs
live in the network namespace of the calling thread (the daemon's; in tests a namespace of the
test's own). A container's namespace is a bind-mounted file anywhere on disk, so it is reached by
file descriptor: the veth peer is created directly inside it (IFLA_NET_NS_FD in the peer's
message), and what must be configured from inside (address, link up, route, sysctls) is done by a
short-lived thread that setns()es into it; a namespace switch affects that thread only, so the rest
of the daemon never leaves its own namespace.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from ipaddress import (IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface,
                       ip_interface)
from pathlib import Path
from socket import AF_INET, AF_INET6
from typing import Callable, Iterator, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tether.network import netns

IFNAMSIZ = 16
BRIDGE_MODE_HAIRPIN = 1
# Docker's netlink library creates routes with RTPROT_BOOT, which `ip route` does not print.
ROUTE_PROTO = "boot"
IFA_F_NODAD = 0x02  # Docker adds IPv6 addresses without duplicate detection: usable at once
T = TypeVar("T")


@contextlib.contextmanager
def _netlink(what: str) -> Iterator[IPRoute]:
    """An rtnetlink socket of the calling thread's namespace; kernel refusals become OSError."""
    try:
        with IPRoute() as ipr:
            yield ipr
    except NetlinkError as exc:
        raise OSError(exc.code, f"{what}: {os.strerror(exc.code)}") from None


def _write_sysctl(path: str, value: str) -> None:
    """Write a sysctl (path under /proc/sys) of the calling thread's network namespace: the
    kernel resolves /proc/sys/net by the namespace of the thread that opens the file."""
    Path("/proc/sys", path).write_text(value)


def _link_index(ifname: str) -> int | None:
    """An interface's index in the calling thread's namespace, by one ioctl: pyroute2's
    link_lookup dumps every link and parses them in Python, which grows with the number of
    containers (40 ms more per start at 100 containers)."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def _in_netns(ns_fd: int, work: Callable[[], T]) -> T:
    """Run `work` in a thread that has joined the namespace `ns_fd`; return or raise its result."""
    def joined() -> T:
        netns.enter(ns_fd)
        return work()
    return netns.in_own_thread(joined, "netns-config")


def addresses_in_use(exclude_ifname: str | None = None) -> list[IPv4Network]:
    """The IPv4 networks the calling thread's namespace uses: its addresses and its routes.

    Default routes are left out (they claim nothing). `exclude_ifname` leaves out what belongs to
    that interface, so a restarted daemon does not count its own bridge as someone else's.
    """
    with _netlink("list addresses and routes") as ipr:
        skip = _link_index(exclude_ifname) if exclude_ifname else None
        nets = [IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}").network
                for a in ipr.get_addr(family=AF_INET) if a["index"] != skip]
        nets += [IPv4Network(f"{r.get('RTA_DST')}/{r['dst_len']}", strict=False)
                 for r in ipr.get_routes(family=AF_INET)
                 if r["dst_len"] > 0 and r.get("RTA_OIF") != skip]
    return list(dict.fromkeys(nets))


def _random_bridge_mac() -> str:
    """A fixed MAC for the bridge, as Docker gives its bridge: 02:42 and four random bytes.

    Without one the kernel gives the bridge the lowest MAC of its ports, which changes as
    containers come and go, and the containers' ARP entry for their gateway goes stale.
    """
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *secrets.token_bytes(4)))


def ensure_bridge(name: str, gateway: IPv4Interface, mtu: int | None = None,
                  gateway6: IPv6Interface | None = None) -> None:
    """Create the bridge if missing, give it exactly the gateway address (and `mtu`, and the
    IPv6 gateway `gateway6` of a network with IPv6), bring it up.

    Idempotent: a daemon restart finds the bridge as it left it. route_localnet lets DNAT send
    loopback-addressed packets out on the bridge; ip_forward lets the bridge route at all.
    """
    with _netlink(f"set up bridge {name}") as ipr:
        index = _link_index(name)
        if index is None:
            ipr.link("add", ifname=name, kind="bridge", address=_random_bridge_mac())
            index = _link_index(name)
        elif ipr.get_links(index)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "bridge":
            raise OSError(f"{name} exists and is not a bridge")
        _set_only_address(ipr, index, gateway)
        if mtu:
            ipr.link("set", index=index, mtu=mtu)
        present6 = _addresses6(ipr, index)
        for old in sorted(present6):  # a changed --fixed-cidr-v6
            if not old.ip.is_link_local and old != gateway6:
                ipr.addr("del", index=index, address=str(old.ip), prefixlen=old.network.prefixlen,
                         family=AF_INET6)
                present6.discard(old)
        if gateway6 is not None:
            _write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "0")
            _add_address6(ipr, index, gateway6, present6)
        ipr.link("set", index=index, state="up")
    _write_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    _write_sysctl("net/ipv4/ip_forward", "1")
    if gateway6 is not None:
        _write_sysctl("net/ipv6/conf/all/forwarding", "1")


def _addresses6(ipr: IPRoute, index: int) -> set[IPv6Interface]:
    """The interface's IPv6 addresses, listed once for all the addresses a caller adds."""
    return {IPv6Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(family=AF_INET6, index=index)}


def _add_address6(ipr: IPRoute, index: int, address: IPv6Interface,
                  present: set[IPv6Interface]) -> None:
    """Add an IPv6 address (without DAD, as Docker) unless the interface has it already
    (`present`, from `_addresses6`, kept up to date here)."""
    if address not in present:
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                 family=AF_INET6, flags=IFA_F_NODAD)
        present.add(address)


def _set_only_address(ipr: IPRoute, index: int, wanted: IPv4Interface) -> None:
    """Make `wanted` the interface's only IPv4 address (a changed --bip replaces the old one)."""
    present = False
    for addr in ipr.get_addr(family=AF_INET, index=index):
        current = IPv4Interface(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}")
        if current == wanted:
            present = True
        else:
            ipr.addr("del", index=index, address=str(current.ip), prefixlen=current.network.prefixlen)
    if not present:
        ipr.addr("add", index=index, address=str(wanted.ip), prefixlen=wanted.network.prefixlen,
                 broadcast=str(wanted.network.broadcast_address))


def delete_bridge(name: str) -> None:
    """Remove the bridge; nothing to do when it is already gone."""
    with _netlink(f"delete bridge {name}") as ipr:
        index = _link_index(name)
        if index is not None:
            ipr.link("del", index=index)


@dataclass(frozen=True)
class Inside6:
    """An endpoint's IPv6 side: its address (None: IPv6 stays off on the interface, as on an
    IPv4-only network), the default route's gateway, and `--link-local-ip` addresses (either
    family, added as Docker adds them: /16 for IPv4, /64 for IPv6)."""

    address: IPv6Interface | None = None
    gateway: IPv6Address | None = None
    link_local: tuple[str, ...] = ()


def connect(netns_path: str, bridge: str, host_ifname: str, address: IPv4Interface,
            gateway: IPv4Address | None, mac: str, container_ifname: str = "eth0",
            mtu: int | None = None, v6: Inside6 = Inside6()) -> None:
    """Plug the namespace at `netns_path` into `bridge` through a new veth pair.

    The host end is enslaved to the bridge, up, with hairpin on (so a container can reach its own
    published port through the host). The peer is born inside the namespace with its final name
    and MAC; from inside it gets its address, goes up and routes by default via the gateway
    (none given: the container already has its default route through another network).
    If any step fails the veth is removed again, which also removes the peer.
    """
    if not 0 < len(host_ifname.encode()) < IFNAMSIZ:
        raise ValueError(f"interface name {host_ifname!r} must be 1 to {IFNAMSIZ - 1} bytes")
    ns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _add_veth(ns_fd, bridge, host_ifname, mac, container_ifname, mtu)
        try:
            _in_netns(ns_fd, lambda: _configure_inside(container_ifname, address, gateway, v6))
        except BaseException:
            disconnect(host_ifname)
            raise
    finally:
        os.close(ns_fd)


def _add_veth(ns_fd: int, bridge: str, host_ifname: str, mac: str, container_ifname: str,
              mtu: int | None = None) -> None:
    """Create the pair with its host end up on the bridge in hairpin mode, its peer in `ns_fd`.

    Both ends get no transmit queue (a veth never queues), as Docker makes them, so `ip link`
    in a container prints what it prints under Docker; and the network's MTU when it has one."""
    sized = {"mtu": mtu} if mtu else {}
    with _netlink(f"create veth {host_ifname} on {bridge}") as ipr:
        master = _link_index(bridge)
        if master is None:
            raise OSError(f"bridge {bridge} does not exist")
        ipr.link("add", ifname=host_ifname, kind="veth", master=master, state="up", txqlen=0,
                 **sized, peer={"ifname": container_ifname, "net_ns_fd": ns_fd,
                                "address": mac, "txqlen": 0, **sized})
        try:
            ipr.brport("set", index=_link_index(host_ifname), mode=BRIDGE_MODE_HAIRPIN)
        except BaseException:
            ipr.link("del", ifname=host_ifname)
            raise


def _configure_inside(ifname: str, address: IPv4Interface, gateway: IPv4Address | None,
                      v6: Inside6 = Inside6()) -> None:
    """From inside the container's namespace: IPv6 off everywhere (as Docker does; `all`
    written once only, since each write of it resets every interface), back on for this
    interface and `lo` when the endpoint has an IPv6 address; the addresses, link up, default
    routes."""
    if Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip() != "1":
        _write_sysctl("net/ipv6/conf/all/disable_ipv6", "1")
    ipv6 = v6.address is not None or any(":" in text for text in v6.link_local)
    if ipv6:
        _write_sysctl(f"net/ipv6/conf/{ifname}/disable_ipv6", "0")
        _write_sysctl("net/ipv6/conf/lo/disable_ipv6", "0")
    with _netlink(f"configure {ifname} in the container") as ipr:
        index = _link_index(ifname)
        ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen,
                 broadcast=str(address.network.broadcast_address))
        present6 = _addresses6(ipr, index) if ipv6 else set()
        if v6.address is not None:
            _add_address6(ipr, index, v6.address, present6)
        for text in v6.link_local:
            local = ip_interface(text + ("/64" if ":" in text else "/16"))
            if local.version == 6:
                _add_address6(ipr, index, local, present6)
            else:
                ipr.addr("add", index=index, address=str(local.ip), prefixlen=16,
                         broadcast=str(local.network.broadcast_address))
        ipr.link("set", index=index, state="up")
        if gateway is not None:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway), oif=index, proto=ROUTE_PROTO)
        if gateway is not None and v6.gateway is not None:
            ipr.route("add", dst="::/0", gateway=str(v6.gateway), oif=index, proto=ROUTE_PROTO,
                      family=AF_INET6)


def route_default(netns_path: str, ifname: str, gateway: IPv4Address,
                  gateway6: IPv6Address | None = None) -> None:
    """Make (or move) the default route of the namespace at `netns_path` go via `gateway` on
    `ifname` (and the IPv6 one via `gateway6`, or none when that endpoint has no IPv6): a
    container on several networks changes gateway as networks come and go."""
    def replace() -> None:
        with _netlink(f"route via {gateway} on {ifname}") as ipr:
            index = _link_index(ifname)
            ipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway), oif=index,
                      proto=ROUTE_PROTO)
            if gateway6 is not None:
                ipr.route("replace", dst="::/0", gateway=str(gateway6), oif=index,
                          proto=ROUTE_PROTO, family=AF_INET6)
                return
            with contextlib.suppress(NetlinkError):  # none there: nothing to remove
                ipr.route("del", dst="::/0", family=AF_INET6)
    ns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _in_netns(ns_fd, replace)
    finally:
        os.close(ns_fd)


def disconnect(host_ifname: str) -> None:
    """Delete a container's veth pair by its host end; nothing to do when it is already gone
    (removing the container's namespace removes the pair too)."""
    with _netlink(f"delete veth {host_ifname}") as ipr:
        index = _link_index(host_ifname)
        if index is None:
            return
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:  # ENODEV: vanished with its namespace meanwhile
                raise


BRIDGE_NF_CALL = "/proc/sys/net/bridge/bridge-nf-call-iptables"
BRIDGE_NF_CALL6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"


def enable_bridge_netfilter() -> None:
    """Make bridged frames (container to container) pass the ip and ip6 hooks, as `--icc=false`
    needs: the br_netfilter module (loaded once for the whole kernel) and its per-namespace
    switches."""
    if not os.path.exists(BRIDGE_NF_CALL):
        subprocess.run(["modprobe", "br_netfilter"], check=True, capture_output=True)
    _write_sysctl(BRIDGE_NF_CALL, "1")
    _write_sysctl(BRIDGE_NF_CALL6, "1")
