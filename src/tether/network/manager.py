"""The networks: the default bridge and user-defined bridges, endpoints for containers, and the
ports they publish.

It composes the pure rules (IPAM, port specs, port allocation, the firewall ruleset) with the
drivers (netlink, nft, the userland proxy). Per container it gives an address on the bridge, a
veth pair into the container's namespace, and host ports served by DNAT in the kernel (IPv4, and
IPv6 to a container with an IPv6 address but for `::1`) or by the proxy in the daemon (IPv6 host
addresses to an IPv4 container, `::1`). With `--ipv6` or a network created with `--ipv6`, an
endpoint also gets an IPv6 address (docs/internals.md, "IPv6"). What an endpoint holds is
written into the container's record, so that a restarted daemon can take it over as it is.
User-defined networks (`network create`) each get a bridge of their own and a record under the
state dir; the firewall isolates every bridge from the others.
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

from tether.network import firewall, firewall6, ipam, netlink, netrules
from tether.network.coalesce import Coalesced
from tether.network.netrules import NetworkRecord
from tether.network.portalloc import PortAllocator, bind_failure, read_ephemeral_range
from tether.network.proxy import PortHolder, UserlandProxy
from tether.rules import portspec
from tether.rules.errors import ApiError, BadRequest, Conflict, Forbidden
from tether.rules.times import now_rfc3339
from tether.spec.types import Config, HostConfig
from tether.state import read_json, read_object_or_set_aside, write_json_atomic

log = logging.getLogger("tether.network")

ANY4 = "0.0.0.0"
ANY6 = "::"
BRIDGE_MODES = ("default", "bridge")
TOP_LEVEL_FIELDS = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
                    "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress")


def host_ifname(cid: str, ifname: str = "eth0") -> str:
    """The host end of a container's veth pair: derived from its ID and the interface's name in
    the container (eth0, eth1...), so recovery and disconnect can find it."""
    if ifname == "eth0":
        return "veth" + cid[:11]
    return f"veth{cid[:8]}-{ifname[3:]}"


def _ipv6_available() -> bool:
    """Whether the daemon's namespace can listen on IPv6 (Docker binds `::` only then)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::", 0))
        return True
    except OSError:
        return False


@dataclass
class _Net:
    """Where an endpoint goes: a bridge, its subnet and gateway, its addresses."""

    id: str
    bridge: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ipam: ipam.IPAM
    record: NetworkRecord | None = None   # None for the default bridge
    subnet6: ipaddress.IPv6Network | None = None   # set on a network with IPv6
    gateway6: ipaddress.IPv6Address | None = None
    ipam6: ipam.IPAM | None = None
    mac_derived: bool = False   # the default bridge's `--fixed-cidr-v6`: addresses from MACs

    def interface6(self) -> ipaddress.IPv6Interface | None:
        """The bridge's own IPv6 address (None: an IPv4-only network)."""
        return ipaddress.IPv6Interface(f"{self.gateway6}/{self.subnet6.prefixlen}") \
            if self.subnet6 is not None else None


@dataclass
class _Published:
    """What one container's published ports hold on the host."""

    holders: list[PortHolder] = field(default_factory=list)
    proxies: list[UserlandProxy] = field(default_factory=list)
    nat6: list[firewall.Mapping] = field(default_factory=list)


class NetworkManager:
    """The `bridge` network of one daemon (`--bridge`, `--bip`, `--iptables`)."""

    def __init__(self, state_dir: Path, bridge: str = "tether0", bip: str | None = None,
                 nat: bool = True, table: str = "tether", icc: bool = True,
                 enable_ipv6: bool = False, fixed_cidr_v6: str | None = None,
                 ip6tables: bool = True) -> None:
        self.state_dir = state_dir
        # `--ipv6`, `--fixed-cidr-v6` (the default bridge's IPv6 subnet), `--ip6tables` (the ip6
        # table: IPv6 NAT, isolation and published ports served by DNAT; without it, as Docker
        # 20.10 without it, IPv6 host ports go through the userland proxy)
        self.enable_ipv6 = enable_ipv6
        # the default bridge's IPv6 subnet as inspect shows it, and the one it hands out
        # addresses from (only with --ipv6: dockerd shows a --fixed-cidr-v6 given without it)
        self.fixed_cidr_v6 = fixed_cidr_v6 or ""
        self.subnet6 = ipaddress.IPv6Network(fixed_cidr_v6, strict=False) \
            if enable_ipv6 and fixed_cidr_v6 else None
        self.ip6tables = ip6tables
        self._ip6_table: bool | None = None  # whether the ip6 table is there (None: not known)
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
        self.ipam6: ipam.IPAM | None = None
        self.ports = PortAllocator(read_ephemeral_range())
        self.ipv6 = False
        self._mappings: dict[str, list[firewall.Mapping]] = {}
        self._published: dict[str, _Published] = {}
        self._lock = asyncio.Lock()
        # the ruleset rewrite: concurrent starts publishing ports share one nft run
        self._apply = Coalesced(self._apply_now)
        self.user: dict[str, _Net] = {}       # user-defined networks by ID
        self.predefined: dict[str, dict[str, str]] = {}   # host/none: their ID and creation time
        self.created = ""

    # ---- daemon start -------------------------------------------------------------------

    async def setup(self) -> None:
        """Choose (or take back) the bridge's subnet, make the bridge, install the ruleset."""
        record_path = self.state_dir / "bridge.json"
        record = _record_or_fresh(record_path)
        if not self._take_back(record):
            in_use = await asyncio.to_thread(netlink.addresses_in_use)
            self.subnet, self.gateway = ipam.choose_subnet(in_use, self.bip)
            self.network_id = record.get("id") or secrets.token_hex(32)
            self.created = now_rfc3339()
            write_json_atomic(record_path, {"id": self.network_id, "bridge": self.bridge,
                                            "bip": self.bip, "subnet": str(self.subnet),
                                            "gateway": str(self.gateway),
                                            "created": self.created})
        self.predefined = self._predefined_ids()
        self.ipam = ipam.IPAM(self.subnet, self.gateway)
        if self.subnet6 is not None:  # the default bridge's IPv6 addresses, beside its IPv4 ones
            self.ipam6 = ipam.IPAM(self.subnet6, self.subnet6.network_address + 1)
        interface = ipaddress.IPv4Interface(f"{self.gateway}/{self.subnet.prefixlen}")
        await asyncio.to_thread(netlink.ensure_bridge, self.bridge, interface, None,
                                self._default().interface6())
        self.ipv6 = _ipv6_available()
        for path in sorted(self._records_dir().glob("*.json")):
            try:
                net = self._user_net(NetworkRecord.from_json(read_json(path)))
                await self._ensure_bridge(net)
            except Exception as exc:  # one broken network never stops the daemon
                log.error("network not restored; its record is left as it is", extra={"ctx": {
                    "record": str(path), "error": repr(exc)}})
                continue
            self.user[net.id] = net
        await self._bridge_netfilter()
        await self._apply()
        log.info("bridge ready", extra={"ctx": {"bridge": self.bridge, "subnet": str(self.subnet)}})

    def _take_back(self, record: dict[str, Any]) -> bool:
        """The default bridge as its record has it, when the record is for this bridge (and
        `--bip`); False to choose anew, also for a record whose fields do not parse."""
        if record.get("bridge") != self.bridge or (self.bip and record.get("bip") != self.bip):
            return False
        try:
            subnet = ipaddress.IPv4Network(record["subnet"])
            gateway = ipaddress.IPv4Address(record["gateway"])
            network_id = str(record["id"])
        except (KeyError, TypeError, ValueError) as exc:
            log.error("default bridge record unusable; choosing anew", extra={"ctx": {
                "error": repr(exc)}})
            return False
        self.subnet, self.gateway, self.network_id = subnet, gateway, network_id
        self.created = str(record.get("created", ""))
        return True

    def _records_dir(self) -> Path:
        path = self.state_dir / "networks"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _predefined_ids(self) -> dict[str, dict[str, str]]:
        """Stable IDs for `host` and `none`, made once."""
        path = self.state_dir / "predefined.json"
        ids = _record_or_fresh(path)
        if all(isinstance(ids.get(name), dict) and isinstance(ids[name].get("id"), str)
               for name in ("host", "none")):
            return ids
        ids = {name: {"id": secrets.token_hex(32), "created": now_rfc3339()}
               for name in ("host", "none")}
        write_json_atomic(path, ids)
        return ids

    @staticmethod
    def _user_net(record: NetworkRecord) -> _Net:
        subnet = record.network
        gateway = ipaddress.IPv4Address(record.gateway)
        net = _Net(record.id, record.bridge, subnet, gateway,
                   ipam.IPAM(subnet, gateway, record.range), record)
        if record.network6 is not None:
            net.subnet6 = record.network6
            net.gateway6 = ipaddress.IPv6Address(record.gateway6)
            net.ipam6 = ipam.IPAM(net.subnet6, net.gateway6, record.range6)
        return net

    @staticmethod
    async def _ensure_bridge(net: _Net) -> None:
        await asyncio.to_thread(netlink.ensure_bridge, net.bridge,
                                ipaddress.IPv4Interface(f"{net.gateway}/{net.subnet.prefixlen}"),
                                _mtu(net.record), net.interface6())

    def _default(self) -> _Net:
        """The default bridge as a network; its address pools are made by `setup`."""
        assert self.ipam is not None
        net = _Net(self.network_id, self.bridge, self.subnet, self.gateway, self.ipam)
        if self.subnet6 is not None:
            assert self.ipam6 is not None
            net.subnet6, net.gateway6, net.ipam6 = self.subnet6, self.ipam6.gateway, self.ipam6
            net.mac_derived = True
        return net

    def _net_of(self, state: dict[str, Any]) -> _Net | None:
        """The network an endpoint state belongs to (the bridge's when it names none)."""
        network_id = state.get("NetworkID") or self.network_id
        if network_id == self.network_id:
            return self._default() if self.ipam is not None else None
        return self.user.get(network_id)

    async def _bridge_netfilter(self) -> None:
        """`--icc=false` (or a network's enable_icc=false) needs bridged frames to see nft."""
        if not self.icc or any(not net.record.icc for net in self.user.values() if net.record):
            await asyncio.to_thread(netlink.enable_bridge_netfilter)

    # ---- user-defined networks ------------------------------------------------------------

    def records(self) -> list[NetworkRecord]:
        return [net.record for net in self.user.values() if net.record]

    def find(self, ref: str) -> NetworkRecord:
        """A user-defined network by ID, name or unique ID prefix (404 otherwise)."""
        return netrules.find(self.records(), ref)

    async def create_network(self, body: dict[str, Any]) -> NetworkRecord:
        """`POST /networks/create`: choose or check the subnet, make the bridge, keep the record."""
        spec = netrules.parse_create(body)
        name = spec["name"]
        async with self._lock:
            if name in netrules.PREDEFINED or any(r.name == name for r in self.records()):
                raise Conflict(f"network with name {name} already exists")
            existing = [self.subnet, *(net.subnet for net in self.user.values())]
            config, config6 = spec["config"], spec["config6"]
            v6: dict[str, Any] = {}
            if config6:
                subnet6, gateway6, range6 = netrules.parse_ipam6(config6)
                netrules.check_overlap(subnet6, [
                    *([self.subnet6] if self.subnet6 else []),
                    *(ipaddress.IPv6Network(r.subnet6, strict=False) for r in self.records()
                      if r.subnet6)])
                v6 = {"enable_ipv6": spec["ipv6"], "subnet6": config6["Subnet"],
                      "gateway6": str(gateway6), "ip_range6": str(range6) if range6 else "",
                      "user_config6": {k: config6[k] for k in ("Subnet", "IPRange", "Gateway")
                                       if config6.get(k)}}
            gateway: ipaddress.IPv4Address | None = None
            ip_range = None
            if config.get("Subnet"):
                subnet, gateway, ip_range = netrules.parse_ipam(config)
                netrules.check_overlap(subnet, existing)
            elif config.get("Gateway") or config.get("IPRange"):
                raise BadRequest("every ip-range or gateway must have a corresponding subnet")
            else:
                in_use = await asyncio.to_thread(netlink.addresses_in_use)
                subnet = netrules.choose_pool([*existing, *in_use])
            gateway = gateway or subnet.network_address + 1
            user_config = {k: config[k] for k in ("Subnet", "IPRange", "Gateway")
                           if config.get(k)}
            bridge_name = spec["options"].get(netrules.BRIDGE_NAME_OPTION)
            if bridge_name and any(net.bridge == bridge_name for net in self.user.values()) \
                    or bridge_name == self.bridge:
                raise Forbidden(f"bridge name {bridge_name} is already in use")
            record = NetworkRecord(id=secrets.token_hex(32), name=name, created=now_rfc3339(),
                                   subnet=str(subnet), gateway=str(gateway),
                                   ip_range=str(ip_range) if ip_range else "",
                                   user_config=user_config, internal=spec["internal"],
                                   attachable=spec["attachable"], labels=spec["labels"],
                                   options=spec["options"], **v6)
            net = self._user_net(record)
            await self._ensure_bridge(net)
            try:
                write_json_atomic(self._records_dir() / f"{record.id}.json", record.to_json())
                self.user[record.id] = net
                await self._bridge_netfilter()
                await self._apply()
            except BaseException:
                self.user.pop(record.id, None)
                (self._records_dir() / f"{record.id}.json").unlink(missing_ok=True)
                await asyncio.to_thread(netlink.delete_bridge, net.bridge)
                raise
        log.info("network created", extra={"ctx": {"id": record.id, "name": name,
                                                   "subnet": record.subnet}})
        return record

    async def remove_network(self, record: NetworkRecord) -> None:
        """Delete a network nobody is connected to (the caller checks): bridge, rules, record."""
        async with self._lock:
            net = self.user.pop(record.id)
            await self._apply()
            await asyncio.to_thread(netlink.delete_bridge, net.bridge)
            (self._records_dir() / f"{record.id}.json").unlink(missing_ok=True)

    async def restore(self, cid: str, name: str, state: dict[str, Any]) -> None:
        """Take back the address and ports of a container that kept running while the daemon
        was away. All or nothing: a port another process took meanwhile raises Docker's
        "driver failed programming external connectivity" error with nothing kept."""
        net = self._net_of(state)
        if not state.get("IPAddress") or net is None:
            return
        async with self._lock:
            address = ipaddress.IPv4Address(state["IPAddress"])
            net.ipam.reserve(address)
            address6 = _address6(state)
            if address6 is not None and (net.subnet6 is None or address6 not in net.subnet6):
                address6 = None  # the daemon's IPv6 settings changed meanwhile: not ours to hold
            if address6 is not None and net.ipam6 is not None:
                net.ipam6.reserve(address6)
            if "Mappings" not in state:  # a further network's endpoint holds no ports
                return
            published = _Published()
            allocated: list[tuple[str, list[str], int]] = []
            mappings: list[firewall.Mapping] = []
            try:
                for proto, host_ip, port, container_port in state.get("Mappings", []):
                    host_ips = self._host_ips(host_ip)
                    self.ports.reserve(proto, host_ips, port)
                    allocated.append((proto, host_ips, port))
                    mappings += await self._hold(published, proto, host_ips, port,
                                                 state["IPAddress"], container_port,
                                                 state.get("GlobalIPv6Address", ""))
                self._published[cid] = published
                self._mappings[cid] = mappings
                await self._apply()
            except BaseException as exc:
                self._published.pop(cid, None)
                self._mappings.pop(cid, None)
                await self._drop(published, allocated)
                _release(net, address, address6)
                if isinstance(exc, ApiError):
                    raise _driver_error(name, state.get("EndpointID", ""), exc.message) from None
                raise

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
                    container_ip: str, container_port: int,
                    container_ip6: str = "") -> list[firewall.Mapping]:
        """Keep the host port bound (IPv4, served by DNAT) or proxied (IPv6); the NAT mappings.
        With `--ip6tables` and a container IPv6 address, IPv6 host addresses are served by ip6
        DNAT too (into `published.nat6`), but for `::1`, which the kernel cannot NAT: the proxy
        serves it, to the container's IPv6 address."""
        mappings = []
        for host_ip in host_ips:
            try:
                if ipaddress.ip_address(host_ip).version == 4:
                    published.holders.append(PortHolder(proto, host_ip, port))
                    mappings.append(firewall.Mapping(proto, host_ip, port, container_ip,
                                                     container_port))
                elif container_ip6 and self.ip6tables and self.nat:
                    published.nat6.append(firewall.Mapping(proto, host_ip, port, container_ip6,
                                                             container_port))
                    loopback = host_ip in (ANY6, "::1") and proto != "sctp"
                    if loopback:
                        proxy = UserlandProxy(proto, "::1", port, container_ip6, container_port)
                        await proxy.start()
                        published.proxies.append(proxy)
                    if host_ip not in (ANY6, "::1"):
                        published.holders.append(PortHolder(proto, host_ip, port))
                elif proto != "sctp":  # the proxy serves tcp and udp; sctp stays IPv4-only
                    proxy = UserlandProxy(proto, host_ip, port, container_ip, container_port)
                    await proxy.start()
                    published.proxies.append(proxy)
            except OSError as exc:  # taken by another process since it was checked (or
                raise bind_failure(proto, host_ip, port, exc) from None  # while we were down)
        return mappings

    async def connect(self, cid: str, name: str, config: Config,
                      host_config: HostConfig, netns_path: Path, network_id: str = "",
                      ifname: str = "eth0", address: str = "", publish: bool = True,
                      default_route: bool = True, address6: str = "",
                      link_local: tuple[str, ...] = (), mac: str = "") -> dict[str, Any]:
        """Put a container on a network (the bridge unless `network_id`) as `ifname`, with a
        given `address` or the lowest free one (and on a network with IPv6, `address6` or one
        of its IPv6 subnet; `link_local`: `--link-local-ip`), and publish its ports when
        `publish` (the container's first network); its MAC is `mac` when given, else Docker's
        from the address. The endpoint state to record."""
        assert self.ipam is not None
        link_local = netrules.link_local_ips(link_local)
        net = self.user[network_id] if network_id else self._default()
        endpoint_id = secrets.token_hex(32)
        requests: list[portspec.BindingRequest] = []
        if publish:
            try:
                bindings = portspec.validate_bindings(host_config.port_bindings)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            try:
                requests = portspec.binding_requests(config.exposed_ports, bindings,
                                                     host_config.publish_all_ports)
            except ValueError as exc:
                raise _driver_error(name, endpoint_id, str(exc)) from None
        async with self._lock:
            try:
                ip = ipaddress.IPv4Address(address) if address else net.ipam.allocate()
                if address:
                    net.ipam.reserve(ip)
            except ValueError as exc:  # IPAMError included; dockerd's words
                if address and "in use" in str(exc):
                    raise Forbidden("Address already in use") from None
                raise Forbidden("no available IPv4 addresses on this network's address pools: "
                                f"{net.record.name if net.record else 'bridge'} ({net.id})"
                                ) from None
            try:
                ip6 = _allocate6(net, address6, mac or ipam.mac_address(ip))
            except BaseException:
                net.ipam.release(ip)
                raise
            published = _Published()
            allocated: list[tuple[str, list[str], int]] = []
            state_mappings: list[list[Any]] = []
            nat: list[firewall.Mapping] = []
            ports: dict[str, list[dict[str, str]] | None] = {
                "{}/{}".format(*portspec.port_key(key)): None
                for key in (config.exposed_ports or {} if publish else {})}
            try:
                for req in requests:
                    host_ips = self._host_ips(req.host_ip)
                    port = self.ports.allocate(req.proto, host_ips, req.host_start, req.host_end)
                    allocated.append((req.proto, host_ips, port))
                    nat += await self._hold(published, req.proto, host_ips, port, str(ip),
                                            req.container_port, str(ip6 or ""))
                    state_mappings.append([req.proto, req.host_ip or ANY4, port, req.container_port])
                    key = f"{req.container_port}/{req.proto}"
                    ports[key] = (ports.get(key) or []) + [
                        {"HostIp": h, "HostPort": str(port)} for h in host_ips]
            except BaseException as exc:
                await self._drop(published, allocated)
                _release(net, ip, ip6)
                if isinstance(exc, ApiError):
                    raise _driver_error(name, endpoint_id, exc.message) from None
                raise
            if publish:
                self._published[cid] = published
                self._mappings[cid] = nat
        state: dict[str, Any] = {
            "NetworkID": net.id, "EndpointID": endpoint_id, "IPAddress": str(ip),
            "IPPrefixLen": net.subnet.prefixlen, "Gateway": str(net.gateway),
            "MacAddress": mac or ipam.mac_address(ip), "Ifname": ifname}
        if ip6 is not None:
            state.update({"GlobalIPv6Address": str(ip6),
                          "GlobalIPv6PrefixLen": net.subnet6.prefixlen if net.subnet6 else 0,
                          "IPv6Gateway": str(net.gateway6)})
        if publish:
            state.update({"Ports": dict(sorted(ports.items())), "Mappings": state_mappings})
        try:
            await asyncio.to_thread(
                netlink.connect, str(netns_path), net.bridge, host_ifname(cid, ifname),
                ipaddress.IPv4Interface(f"{ip}/{net.subnet.prefixlen}"),
                net.gateway if default_route else None, state["MacAddress"], ifname,
                _mtu(net.record), netlink.Inside6(
                    ipaddress.IPv6Interface(f"{ip6}/{net.subnet6.prefixlen}")
                    if ip6 is not None and net.subnet6 is not None else None,
                    net.gateway6 if ip6 is not None else None, tuple(link_local)))
            if nat or published.nat6:  # no NAT mapping: the same ruleset, no nft run (~10 ms)
                await self._apply()
        except BaseException:
            await self.disconnect(cid, state)
            raise
        return state

    async def route_default(self, netns_path: Path, state: dict[str, Any]) -> None:
        """Route a container's default traffic through the endpoint `state`'s gateway."""
        await asyncio.to_thread(netlink.route_default, str(netns_path), state["Ifname"],
                                ipaddress.IPv4Address(state["Gateway"]),
                                ipaddress.IPv6Address(state["IPv6Gateway"])
                                if state.get("IPv6Gateway") else None)

    async def _drop(self, published: _Published, allocated: list[tuple[str, list[str], int]]) -> None:
        for proxy in published.proxies:
            await proxy.stop()
        for holder in published.holders:
            holder.close()
        for proto, host_ips, port in allocated:
            self.ports.release(proto, host_ips, port)

    async def disconnect(self, cid: str, state: dict[str, Any]) -> None:
        """Free everything `connect` (or `restore`) took; safe to call twice or for nothing.
        A state without `Mappings` other than the empty one is a further network's endpoint:
        the container's published ports stay."""
        await asyncio.to_thread(netlink.disconnect,
                                host_ifname(cid, state.get("Ifname") or "eth0"))
        async with self._lock:
            if "Mappings" in state or not state:
                published = self._published.pop(cid, _Published())
                allocated = [(proto, self._host_ips(host_ip), port)
                             for proto, host_ip, port, _ in state.get("Mappings", [])]
                await self._drop(published, allocated if cid in self._mappings else [])
                # only a container with NAT mappings changes the ruleset
                if self._mappings.pop(cid, None) or published.nat6:
                    await self._apply()
            net = self._net_of(state)
            if state.get("IPAddress") and net is not None:
                _release(net, ipaddress.IPv4Address(state["IPAddress"]), _address6(state))

    async def set_link_accepts(self, accepts: list[tuple[str, str, str, int]]) -> None:
        """The (proto, parent IP, child IP, port) pairs that may pass with `--icc=false`."""
        if tuple(accepts) == self._accepts:
            return
        async with self._lock:
            self._accepts = tuple(accepts)
            await self._apply()

    async def _apply_now(self) -> None:
        """Rewrite the ruleset from the state as it is now (read before the first await, as
        Coalesced requires); called through `self._apply`."""
        if not self.nat:
            return
        mappings = tuple(m for ms in self._mappings.values() for m in ms)
        networks = tuple(
            firewall.BridgeNet(net.bridge, str(net.subnet), str(net.gateway), net.record.icc,
                               net.record.internal)
            for net in self.user.values() if net.record)
        cfg = firewall.FirewallConfig(table=self.table, bridge=self.bridge,
                                      subnet=str(self.subnet), mappings=mappings,
                                      gateway=str(self.gateway), icc=self.icc,
                                      accepts=self._accepts, networks=networks)
        six = self.ip6tables and (self.enable_ipv6 or any(n.subnet6 for n in self.user.values()))
        cfg6 = self._firewall6() if six else None
        # the ip6 table's removal when it is unknown (an earlier run's, at start) or now unused
        remove6 = cfg6 is None and self._ip6_table is not False
        await asyncio.to_thread(firewall6.apply_with, cfg, cfg6, remove6)
        self._ip6_table = cfg6 is not None

    def _firewall6(self) -> firewall6.Firewall6Config:
        """The ip6 table: every bridge (isolation), the IPv6 ones with their subnets."""
        bridges = tuple(
            firewall.BridgeNet(net.bridge, str(net.subnet6 or ""), str(net.gateway6 or ""),
                               net.record.icc if net.record else self.icc,
                               bool(net.record and net.record.internal))
            for net in (self._default(), *self.user.values()))
        mappings = tuple(m for published in self._published.values() for m in published.nat6)
        return firewall6.Firewall6Config(self.table, bridges, mappings)

    # ---- reports ------------------------------------------------------------------------

    def settings(self, mode: str, state: dict[str, Any], sandbox_key: str,
                 user: list[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:
        """Docker 20.10's NetworkSettings for a container in `mode` with bridge endpoint `state`
        (empty before the first start; only the network and sandbox IDs once stopped) and the
        endpoints on user networks, `user`: (network name, {Aliases, IPAMConfig, Links, State})
        in connection order. The top-level address fields are the default bridge's only;
        `Ports` belong to the first network, which published them."""
        networks = self.networks(mode, state, user)
        sandbox = state.get("SandboxID", "")
        ports = state.get("Ports", {}) if state.get("IPAddress") and "Ports" in state else {}
        for _, entry in user:
            live = entry.get("State") or {}
            sandbox = sandbox or live.get("SandboxID", "")
            if live.get("IPAddress") and "Ports" in live:
                ports = live["Ports"]
        top = networks["bridge"] if _on_bridge(mode, state) else _endpoint_fields({})
        return {"Bridge": "", "SandboxID": sandbox, "HairpinMode": False,
                "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "Ports": ports, "SandboxKey": sandbox_key if sandbox else "",
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                **{key: top[key] for key in TOP_LEVEL_FIELDS},
                "Networks": networks}

    @staticmethod
    def networks(mode: str, state: dict[str, Any],
                 user: list[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:
        """NetworkSettings.Networks alone (see `settings`), sorted by name: all that the API
        list shows of a container's networks, without the rest of the settings."""
        networks: dict[str, Any] = {}
        on_bridge = _on_bridge(mode, state)
        if mode in ("host", "none") or on_bridge:
            endpoint: dict[str, Any] = {"IPAMConfig": None, "Links": None, "Aliases": None}
            endpoint.update(_endpoint_fields(state))
            endpoint.update(state.get("EndpointConfig") or {})  # as `network connect bridge` gave it
            networks["bridge" if on_bridge else mode] = endpoint
        for name, entry in user:
            live = entry.get("State") or {}
            networks[name] = {"IPAMConfig": entry.get("IPAMConfig"), "Links": entry.get("Links"),
                              "Aliases": entry.get("Aliases"), **_endpoint_fields(live),
                              "DriverOpts": entry.get("DriverOpts")}
            if not live.get("MacAddress") and entry.get("MacAddress"):  # asked for, not started
                networks[name]["MacAddress"] = entry["MacAddress"]
        return dict(sorted(networks.items()))

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


def _mtu(record: NetworkRecord | None) -> int | None:
    """A network's `com.docker.network.driver.mtu` (None: the kernel's default)."""
    return int(record.options.get(netrules.MTU_OPTION, 0)) or None if record else None


def _on_bridge(mode: str, state: dict[str, Any]) -> bool:
    """Whether the container has an endpoint on the default bridge: by its mode unless
    disconnected from it, or connected to it later (`network connect bridge`)."""
    return mode in BRIDGE_MODES and not state.get("Detached") or "Attached" in state


def _endpoint_fields(state: dict[str, Any]) -> dict[str, Any]:
    """An EndpointSettings' address fields from an endpoint state (empty when not running)."""
    return {"NetworkID": state.get("NetworkID", ""), "EndpointID": state.get("EndpointID", ""),
            "Gateway": state.get("Gateway", ""), "IPAddress": state.get("IPAddress", ""),
            "IPPrefixLen": state.get("IPPrefixLen", 0), "IPv6Gateway": state.get("IPv6Gateway", ""),
            "GlobalIPv6Address": state.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": state.get("GlobalIPv6PrefixLen", 0),
            "MacAddress": state.get("MacAddress", ""), "DriverOpts": None}


def _address6(state: dict[str, Any]) -> ipaddress.IPv6Address | None:
    text = state.get("GlobalIPv6Address")
    return ipaddress.IPv6Address(text) if text else None


def _allocate6(net: _Net, requested: str, mac: str) -> ipaddress.IPv6Address | None:
    """An endpoint's IPv6 address on a network with IPv6 (None on one without): `--ip6` as
    given, else on the default bridge the MAC-derived one (Docker 20.10), else the lowest free;
    dockerd's texts when it cannot be had."""
    if net.ipam6 is None or net.subnet6 is None:
        return None
    try:
        if requested:
            address = ipaddress.IPv6Address(requested)
            net.ipam6.reserve(address)
            return address
        derived = ipam.mac_derived_ipv6(net.subnet6, mac) if net.mac_derived else None
        if derived is not None:
            net.ipam6.reserve(derived)
            return derived
        return net.ipam6.allocate()  # type: ignore[return-value]
    except ValueError as exc:
        if requested and "in use" in str(exc):
            raise Forbidden("Address already in use") from None
        raise Forbidden("no available IPv6 addresses on this network's address pools: "
                        f"{net.record.name if net.record else 'bridge'} ({net.id})") from None


def _release(net: _Net, ip: ipaddress.IPv4Address, ip6: ipaddress.IPv6Address | None) -> None:
    """Give an endpoint's addresses back (an IPv6 one from before a change of `--fixed-cidr-v6`
    was never held)."""
    net.ipam.release(ip)
    if ip6 is not None and net.ipam6 is not None and net.subnet6 is not None \
            and ip6 in net.subnet6:
        net.ipam6.release(ip6)


def _driver_error(name: str, endpoint_id: str, message: str) -> ApiError:
    """Docker 20.10's wrapping of a port that cannot be published."""
    return ApiError("driver failed programming external connectivity on endpoint "
                    f"{name.lstrip('/')} ({endpoint_id}): {message}", 500)


def _record_or_fresh(path: Path) -> dict[str, Any]:
    """One of the network state's own records, {} (start afresh) when it is missing or cannot
    be read; an unreadable one is set aside and logged, never a reason to stop the daemon."""
    record = read_object_or_set_aside(path)
    if record is None:
        log.error("network record unreadable, set aside; made anew", extra={"ctx": {
            "file": path.name}})
        return {}
    return record
