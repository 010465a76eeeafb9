"""The default bridge network: endpoints for containers, and the ports they publish.

It composes the pure rules (IPAM, port specs, port allocation, the firewall ruleset) with the
drivers (netlink, nft, the userland proxy). Per container it gives an address on the bridge, a
veth pair into the container's namespace, and host ports served by DNAT in the kernel (IPv4) or
by the proxy in the daemon (IPv6 host addresses to an IPv4 container). What an endpoint holds is
written into the container's record, so that a restarted daemon can take it over as it is.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import ApiError, BadRequest
from tether.network import firewall, ipam, netlink, portspec
from tether.network.portalloc import PortAllocator, read_ephemeral_range
from tether.network.proxy import PortHolder, UserlandProxy
from tether.state import read_json, write_json_atomic

log = logging.getLogger("tether.network")

ANY4 = "0.0.0.0"
ANY6 = "::"
BRIDGE_MODES = ("default", "bridge")
TOP_LEVEL_FIELDS = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
                    "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress")


def host_ifname(cid: str) -> str:
    """The host end of a container's veth pair: derived from its ID, so recovery can find it."""
    return "veth" + cid[:11]


def _ipv6_available() -> bool:
    """Whether the daemon's namespace can listen on IPv6 (Docker binds `::` only then)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::", 0))
        return True
    except OSError:
        return False


@dataclass
class _Published:
    """What one container's published ports hold on the host."""

    holders: list[PortHolder] = field(default_factory=list)
    proxies: list[UserlandProxy] = field(default_factory=list)


class NetworkManager:
    """The `bridge` network of one daemon (`--bridge`, `--bip`, `--iptables`)."""

    def __init__(self, state_dir: Path, bridge: str = "tether0", bip: str | None = None,
                 nat: bool = True, table: str = "tether", icc: bool = True) -> None:
        self.state_dir = state_dir
        self.icc = icc
        self._accepts: tuple[tuple[str, str, str, int], ...] = ()
        self.bridge = bridge
        self.bip = bip
        self.nat = nat
        self.table = table
        self.network_id = ""
        self.subnet = ipaddress.IPv4Network("172.17.0.0/16")
        self.gateway = ipaddress.IPv4Address("172.17.0.1")
        self.ipam: ipam.IPAM | None = None
        self.ports = PortAllocator(read_ephemeral_range())
        self.ipv6 = False
        self._mappings: dict[str, list[firewall.Mapping]] = {}
        self._published: dict[str, _Published] = {}
        self._lock = asyncio.Lock()

    # ---- daemon start -------------------------------------------------------------------

    async def setup(self) -> None:
        """Choose (or take back) the bridge's subnet, make the bridge, install the ruleset."""
        record_path = self.state_dir / "bridge.json"
        try:
            record = read_json(record_path)
        except FileNotFoundError:
            record = {}
        if record.get("bridge") == self.bridge and (not self.bip or record.get("bip") == self.bip):
            self.subnet = ipaddress.IPv4Network(record["subnet"])
            self.gateway = ipaddress.IPv4Address(record["gateway"])
            self.network_id = record["id"]
        else:
            in_use = await asyncio.to_thread(netlink.addresses_in_use)
            self.subnet, self.gateway = ipam.choose_subnet(in_use, self.bip)
            self.network_id = record.get("id") or secrets.token_hex(32)
            write_json_atomic(record_path, {"id": self.network_id, "bridge": self.bridge,
                                            "bip": self.bip, "subnet": str(self.subnet),
                                            "gateway": str(self.gateway)})
        self.ipam = ipam.IPAM(self.subnet, self.gateway)
        interface = ipaddress.IPv4Interface(f"{self.gateway}/{self.subnet.prefixlen}")
        await asyncio.to_thread(netlink.ensure_bridge, self.bridge, interface)
        self.ipv6 = _ipv6_available()
        if not self.icc:
            await asyncio.to_thread(netlink.enable_bridge_netfilter)
        await self._apply()
        log.info("bridge ready", extra={"ctx": {"bridge": self.bridge, "subnet": str(self.subnet)}})

    async def restore(self, cid: str, state: dict[str, Any]) -> None:
        """Take back the address and ports of a container that kept running while the daemon was away."""
        if not state.get("IPAddress") or self.ipam is None:
            return
        async with self._lock:
            self.ipam.reserve(ipaddress.IPv4Address(state["IPAddress"]))
            published = _Published()
            mappings: list[firewall.Mapping] = []
            for proto, host_ip, port, container_port in state.get("Mappings", []):
                host_ips = self._host_ips(host_ip)
                self.ports.reserve(proto, host_ips, port)
                mappings += await self._hold(published, proto, host_ips, port,
                                             state["IPAddress"], container_port)
            self._published[cid] = published
            self._mappings[cid] = mappings
            await self._apply()

    async def shutdown(self) -> None:
        """Close what the daemon itself serves (proxies); the kernel's rules stay for the next one."""
        for published in self._published.values():
            for proxy in published.proxies:
                await proxy.stop()
            for holder in published.holders:
                holder.close()

    # ---- endpoints ----------------------------------------------------------------------

    def _host_ips(self, host_ip: str) -> list[str]:
        if host_ip in ("", ANY4):
            return [ANY4, ANY6] if self.ipv6 else [ANY4]
        return [host_ip]

    async def _hold(self, published: _Published, proto: str, host_ips: list[str], port: int,
                    container_ip: str, container_port: int) -> list[firewall.Mapping]:
        """Keep the host port bound (IPv4, served by DNAT) or proxied (IPv6); the NAT mappings."""
        mappings = []
        for host_ip in host_ips:
            if ipaddress.ip_address(host_ip).version == 4:
                published.holders.append(PortHolder(proto, host_ip, port))
                mappings.append(firewall.Mapping(proto, host_ip, port, container_ip, container_port))
            elif proto != "sctp":  # the proxy serves tcp and udp; sctp stays IPv4-only
                proxy = UserlandProxy(proto, host_ip, port, container_ip, container_port)
                await proxy.start()
                published.proxies.append(proxy)
        return mappings

    async def connect(self, cid: str, name: str, config: dict[str, Any],
                      host_config: dict[str, Any], netns_path: Path) -> dict[str, Any]:
        """Put a container on the bridge and publish its ports; the endpoint state to record."""
        assert self.ipam is not None
        endpoint_id = secrets.token_hex(32)
        try:
            bindings = portspec.validate_bindings(host_config.get("PortBindings"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        try:
            requests = portspec.binding_requests(config.get("ExposedPorts"), bindings,
                                                 bool(host_config.get("PublishAllPorts")))
        except ValueError as exc:
            raise _driver_error(name, endpoint_id, str(exc)) from None
        async with self._lock:
            address = self.ipam.allocate()
            published = _Published()
            allocated: list[tuple[str, list[str], int]] = []
            state_mappings: list[list[Any]] = []
            nat: list[firewall.Mapping] = []
            ports: dict[str, list[dict[str, str]] | None] = {
                "{}/{}".format(*portspec.port_key(key)): None
                for key in config.get("ExposedPorts") or {}}
            try:
                for req in requests:
                    host_ips = self._host_ips(req.host_ip)
                    port = self.ports.allocate(req.proto, host_ips, req.host_start, req.host_end)
                    allocated.append((req.proto, host_ips, port))
                    nat += await self._hold(published, req.proto, host_ips, port, str(address),
                                            req.container_port)
                    state_mappings.append([req.proto, req.host_ip or ANY4, port, req.container_port])
                    key = f"{req.container_port}/{req.proto}"
                    ports[key] = (ports.get(key) or []) + [
                        {"HostIp": ip, "HostPort": str(port)} for ip in host_ips]
            except ApiError as exc:
                await self._drop(published, allocated)
                self.ipam.release(address)
                raise _driver_error(name, endpoint_id, exc.message) from None
            except BaseException:
                await self._drop(published, allocated)
                self.ipam.release(address)
                raise
            self._published[cid] = published
            self._mappings[cid] = nat
        try:
            await asyncio.to_thread(
                netlink.connect, str(netns_path), self.bridge, host_ifname(cid),
                ipaddress.IPv4Interface(f"{address}/{self.subnet.prefixlen}"), self.gateway,
                ipam.mac_address(address))
            if nat:  # no NAT mapping: the ruleset is the same, nft need not run (~10 ms)
                async with self._lock:
                    await self._apply()
        except BaseException:
            await self.disconnect(cid, {"IPAddress": str(address), "Mappings": state_mappings})
            raise
        return {"NetworkID": self.network_id, "EndpointID": endpoint_id,
                "IPAddress": str(address), "IPPrefixLen": self.subnet.prefixlen,
                "Gateway": str(self.gateway), "MacAddress": ipam.mac_address(address),
                "Ports": dict(sorted(ports.items())), "Mappings": state_mappings}

    async def _drop(self, published: _Published, allocated: list[tuple[str, list[str], int]]) -> None:
        for proxy in published.proxies:
            await proxy.stop()
        for holder in published.holders:
            holder.close()
        for proto, host_ips, port in allocated:
            self.ports.release(proto, host_ips, port)

    async def disconnect(self, cid: str, state: dict[str, Any]) -> None:
        """Free everything `connect` (or `restore`) took; safe to call twice or for nothing."""
        await asyncio.to_thread(netlink.disconnect, host_ifname(cid))
        async with self._lock:
            published = self._published.pop(cid, _Published())
            allocated = [(proto, self._host_ips(host_ip), port)
                         for proto, host_ip, port, _ in state.get("Mappings", [])]
            await self._drop(published, allocated if cid in self._mappings else [])
            if self._mappings.pop(cid, None):  # only a container with NAT mappings changes it
                await self._apply()
            if state.get("IPAddress") and self.ipam is not None:
                self.ipam.release(ipaddress.IPv4Address(state["IPAddress"]))

    async def set_link_accepts(self, accepts: list[tuple[str, str, str, int]]) -> None:
        """The (proto, parent IP, child IP, port) pairs that may pass with `--icc=false`."""
        if tuple(accepts) == self._accepts:
            return
        async with self._lock:
            self._accepts = tuple(accepts)
            await self._apply()

    async def _apply(self) -> None:
        if not self.nat:
            return
        mappings = tuple(m for ms in self._mappings.values() for m in ms)
        cfg = firewall.FirewallConfig(table=self.table, bridge=self.bridge,
                                      subnet=str(self.subnet), mappings=mappings,
                                      gateway=str(self.gateway), icc=self.icc,
                                      accepts=self._accepts)
        await asyncio.to_thread(firewall.apply, cfg)

    # ---- reports ------------------------------------------------------------------------

    def settings(self, mode: str, state: dict[str, Any], sandbox_key: str) -> dict[str, Any]:
        """Docker 20.10's NetworkSettings for a container in `mode` with endpoint `state` (empty
        before the first start; only the network and sandbox IDs once stopped)."""
        endpoint: dict[str, Any] = {"IPAMConfig": None, "Links": None, "Aliases": None}
        endpoint.update({
            "NetworkID": state.get("NetworkID", ""), "EndpointID": state.get("EndpointID", ""),
            "Gateway": state.get("Gateway", ""), "IPAddress": state.get("IPAddress", ""),
            "IPPrefixLen": state.get("IPPrefixLen", 0), "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": state.get("MacAddress", ""), "DriverOpts": None})
        sandbox = state.get("SandboxID", "")
        return {"Bridge": "", "SandboxID": sandbox, "HairpinMode": False,
                "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "Ports": state.get("Ports", {}) if state.get("IPAddress") else {},
                "SandboxKey": sandbox_key if sandbox else "",
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                **{key: endpoint[key] for key in TOP_LEVEL_FIELDS},
                "Networks": {"bridge" if mode in BRIDGE_MODES else mode: endpoint}}

    @staticmethod
    def list_ports(state: dict[str, Any]) -> list[dict[str, Any]]:
        """The API list's `Ports`: exposed-only ports bare, each binding with IP and host port."""
        if not state.get("IPAddress"):
            return []
        items: list[dict[str, Any]] = []
        for key, bindings in state.get("Ports", {}).items():
            private, proto = portspec.port_key(key)
            if not bindings:
                items.append({"PrivatePort": private, "Type": proto})
                continue
            for b in bindings:
                items.append({"IP": b["HostIp"], "PrivatePort": private,
                              "PublicPort": int(b["HostPort"]), "Type": proto})
        return items


def _driver_error(name: str, endpoint_id: str, message: str) -> ApiError:
    """Docker 20.10's wrapping of a port that cannot be published."""
    return ApiError("driver failed programming external connectivity on endpoint "
                    f"{name.lstrip('/')} ({endpoint_id}): {message}", 500)
