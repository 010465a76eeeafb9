"""Containers on networks: joining and leaving the default bridge and user-defined networks,
at start, at exit and by `network connect`/`disconnect`, and the embedded resolver's view.

The records: `Container.networks` (network ID -> {Name, Aliases, IPAMConfig, Links, State}, in
connection order) beside `Container.network`, the default bridge's endpoint. Who resolves to
what is `tether.engine.endpoints` (pure). The lifecycle service calls `join_at_start`,
`leave_all` and `restore` around each run; the network routes call `connect_network` and
`disconnect_network`, which hold the container's lifecycle lock.
"""
from __future__ import annotations

import asyncio
import logging
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Callable

from tether.engine import endpoints
from tether.engine import links as linkrules
from tether.engine.events import EventBus
from tether.engine.generated_files import GeneratedFiles
from tether.engine.link_service import LinkService
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.engine.registry import ContainerRegistry
from tether.network import netrules
from tether.network.manager import NetworkManager
from tether.rules import process_options
from tether.rules.errors import ApiError, BadRequest, Forbidden, NotFound

log = logging.getLogger("tether.containers")
# what the default bridge's endpoint keeps across runs beside its IDs: off it (`Detached`), on it
# beside user networks (`Attached`), the EndpointConfig of `network connect bridge`
KEPT_BRIDGE_FIELDS = ("Detached", "Attached", "EndpointConfig")
ENDPOINT_CONFIG_FIELDS = ("IPAMConfig", "Links", "Aliases", "DriverOpts")


class NetworkAttachment:
    """The network endpoints of one daemon's containers."""

    def __init__(self, registry: ContainerRegistry, network: NetworkManager, paths: Paths,
                 files: GeneratedFiles, links: LinkService, events: EventBus,
                 lock: Callable[[str], asyncio.Lock]) -> None:
        self.registry = registry
        self.network = network
        self.paths = paths
        self.files = files
        self.links = links
        self.events = events
        self.lock = lock  # a container's lifecycle lock
        # the embedded DNS resolver (tether.network.resolver.EmbeddedResolver), set by the daemon:
        # it serves every running container that is on a user-defined network
        self.resolver: Any = None

    # ---- around a run -------------------------------------------------------------------

    async def join_at_start(self, c: Container, netns_path: Path,
                            link_hosts: list[tuple[str, str]]) -> None:
        """A starting container's endpoints: the default bridge first, as eth0 (with the
        hosts lines of its links; its parents' lines follow its new address when the endpoint
        joins, as dockerd), then its user networks, whose resolver runs before the process
        does (its first lookup needs it)."""
        c.next_ifindex = 0
        mac = c.config.mac_address
        if mac and not process_options.valid_mac(mac):
            raise process_options.mac_error(mac)
        if self.on_bridge(c):
            kept = {k: v for k, v in c.network.items() if k in KEPT_BRIDGE_FIELDS}
            own = c.network_mode in ("default", "bridge")  # Config.MacAddress's network
            c.network = {**await self.network.connect(c.id, c.name, c.config, c.host_config,
                                                      netns_path, mac=mac if own else "",
                                                      link_local=self._bridge_link_local(c)),
                         "SandboxID": c.id, **kept}
            c.next_ifindex = 1
            self._emit_bridge(c.id, "connect")
            self.files.write_hosts(c, link_hosts)
            self.links.refresh_parents(c)
        if c.networks or c.network_mode not in ("bridge", "none", "host"):
            await self._join_user_networks(c, netns_path)
            self.files.write_hosts(c)
            await self.serve_dns(c)

    async def leave_all(self, c: Container | str) -> None:
        """Every endpoint of a run, its ports freed (the user network's that published them
        first); a bare ID for a container with no record."""
        cid = c if isinstance(c, str) else c.id
        if not isinstance(c, str):
            await self._leave_user_networks(c)
        state = {} if isinstance(c, str) else c.network
        try:
            await self.network.disconnect(cid, state)
        except Exception:
            log.exception("network disconnect failed", extra={"ctx": {"id": cid}})
        if state.get("EndpointID"):
            self._emit_bridge(cid, "disconnect")
        if not isinstance(c, str):
            c.network = {k: v for k, v in state.items()
                         if k in ("NetworkID", "SandboxID", *KEPT_BRIDGE_FIELDS)}

    async def restore(self, c: Container) -> None:
        """After a daemon restart: a running container's endpoints taken back as they were."""
        await self.network.restore(c.id, c.name, c.network)
        for entry in c.networks.values():
            await self.network.restore(c.id, c.name, entry.get("State") or {})

    async def stop_dns(self, cid: str) -> None:
        if self.resolver is not None:
            try:
                await self.resolver.stop(cid)
            except Exception:
                log.exception("embedded DNS stop failed", extra={"ctx": {"id": cid}})

    def _emit_bridge(self, cid: str, action: str) -> None:
        """dockerd's `network connect`/`disconnect` events of the bridge network."""
        self.events.publish("network", action, self.network.network_id,
                            {"container": cid, "name": "bridge", "type": "bridge"})

    # ---- views --------------------------------------------------------------------------

    def settings(self, c: Container) -> dict[str, Any]:
        """Inspect's NetworkSettings."""
        return self.network.settings(c.network_mode, c.network, str(self.paths.netns(c.id)),
                                     _user_endpoints(c))

    def networks(self, c: Container) -> dict[str, Any]:
        """NetworkSettings.Networks alone: the list's view, which needs none of the rest."""
        return self.network.networks(c.network_mode, c.network, _user_endpoints(c))

    def published_ports(self, c: Container) -> list[dict[str, Any]]:
        live = [c.network, *(entry.get("State") or {} for entry in c.networks.values())]
        holder = next((state for state in live if state.get("IPAddress") and "Ports" in state),
                      {})
        return self.network.list_ports(holder)

    def endpoints_at_create(self, mode: str, configs: dict[str, Any]
                             ) -> dict[str, dict[str, Any]]:
        """The user networks a new container joins (its NetworkMode first, then the other
        EndpointsConfig entries), as record entries; dockerd's errors for the rest."""
        builtin = mode in ("default", "bridge", "none", "host")
        by_network: dict[str, dict[str, Any]] = {}
        for key, config in configs.items():
            config = config or {}
            if key in ("default", "bridge", "none", "host") or (builtin and key == mode):
                netrules.check_endpoint_config(key, False, config)
                continue
            try:
                record = self.network.find(key)
            except NotFound:  # as dockerd: an unknown network fails the start, not the create
                continue
            by_network[record.id] = self._endpoint_entry(record, config)
        if builtin:
            return by_network
        try:
            record = self.network.find(mode)
        except NotFound:
            return by_network
        first = by_network.pop(record.id, None) or self._endpoint_entry(record, {})
        return {record.id: first, **by_network}

    @staticmethod
    def bridge_endpoint_at_create(mode: str, configs: dict[str, Any]) -> dict[str, Any]:
        """A new container's default-bridge record before its first start: the IPAMConfig of
        its bridge entry (key `bridge` or `default`) when it asks for link-local IPs, the one
        setting of that entry tether applies there (the rest is refused or dockerd's to fill);
        shown in inspect and added to its interface at each start, as dockerd does."""
        if mode not in ("default", "bridge"):
            return {}
        for key in ("bridge", "default"):
            ipam_config = (configs.get(key) or {}).get("IPAMConfig") or {}
            if ipam_config.get("LinkLocalIPs"):
                return {"EndpointConfig": {"IPAMConfig": ipam_config}}
        return {}

    @staticmethod
    def _bridge_link_local(c: Container) -> tuple[str, ...]:
        """The `--link-local-ip` addresses of the container's default-bridge endpoint."""
        ipam_config = (c.network.get("EndpointConfig") or {}).get("IPAMConfig") or {}
        return tuple(ipam_config.get("LinkLocalIPs") or ())

    @staticmethod
    def _endpoint_entry(record: netrules.NetworkRecord, config: dict[str, Any]) -> dict[str, Any]:
        """A record entry from an EndpointSettings request; a static address must be in the
        subnet (whether it is free is known only when the endpoint is made, at start)."""
        ipam_config = config.get("IPAMConfig") or None
        if ipam_config and ipam_config.get("IPv4Address"):
            address = netrules.ipv4(ipam_config["IPv4Address"])
            if address not in record.network:
                raise BadRequest(f"Invalid address {address}: It does not belong to any of "
                                 "this network's subnets")
        if ipam_config and ipam_config.get("IPv6Address"):
            netrules.check_ipv6_request(record, ipam_config["IPv6Address"])
        return {"Name": record.name, "Aliases": config.get("Aliases"),
                "IPAMConfig": config.get("IPAMConfig"), "Links": config.get("Links") or None,
                "DriverOpts": config.get("DriverOpts"),
                "MacAddress": config.get("MacAddress") or "", "State": {}}

    async def _join_user_networks(self, c: Container, netns_path: Path) -> None:
        """Connect a starting container to each of its user networks (after the bridge, if it
        is on it): the first endpoint publishes the ports and routes by default. Its mode's
        network must exist by now."""
        if c.network_mode not in ("bridge", "none", "host") and not any(
                entry["Name"] == c.network_mode or nid == c.network_mode
                for nid, entry in c.networks.items()):
            record = self.network.find(c.network_mode)
            c.networks = {record.id: self._endpoint_entry(record, {}), **c.networks}
            self.files.write_resolv(c)
        for nid in list(c.networks):
            await self._join(c, nid, netns_path)
        await self._route_by_preferred_gateway(c)

    async def _join(self, c: Container, nid: str, netns_path: Path) -> None:
        entry = c.networks[nid]
        if nid not in self.network.user:  # removed while the container was stopped
            raise NotFound(f"network {entry['Name']} not found")
        first = not c.network.get("IPAddress") and not any(
            (e.get("State") or {}).get("IPAddress") for e in c.networks.values())
        entry["Aliases"] = endpoints.merge_aliases(entry.get("Aliases") or [], c.short_id)
        mac = self._mac_on(c, nid)
        if mac and not process_options.valid_mac(mac):
            raise process_options.mac_error(mac)
        state = await self.network.connect(
            c.id, c.name, c.config, c.host_config, netns_path, network_id=nid,
            ifname=self._next_ifname(c),
            address=(entry.get("IPAMConfig") or {}).get("IPv4Address", ""),
            publish=first, default_route=first, mac=mac,
            address6=(entry.get("IPAMConfig") or {}).get("IPv6Address", ""),
            link_local=tuple((entry.get("IPAMConfig") or {}).get("LinkLocalIPs") or ()))
        entry["State"] = {**state, "SandboxID": c.id}

    @staticmethod
    def _mac_on(c: Container, nid: str) -> str:
        """The endpoint's own MacAddress (`network connect` at API 1.44, which dockerd 25+
        applies and 20.10 only shows until the start); else Config.MacAddress for the
        container's own network (its NetworkMode), as in Docker 20.10; else none, and the
        endpoint gets Docker's MAC from its IP."""
        if c.networks[nid].get("MacAddress"):
            return c.networks[nid]["MacAddress"]
        if nid != c.network_mode and c.networks[nid].get("Name") != c.network_mode:
            return ""
        return c.config.mac_address

    @staticmethod
    def _next_ifname(c: Container) -> str:
        live = [e["State"] for e in c.networks.values() if (e.get("State") or {}).get("IPAddress")]
        if c.network.get("IPAddress"):
            live.append(c.network)
        index = endpoints.next_ifindex(c.next_ifindex,
                                       (state.get("Ifname") or "eth0" for state in live))
        c.next_ifindex = index + 1
        return f"eth{index}"

    async def _route_by_preferred_gateway(self, c: Container, after_leave: bool = False) -> None:
        """Give a running container on several networks its default route through the
        endpoint libnetwork would choose (see endpoints.gateway_endpoint); after a network
        left, also when one is left (its endpoint was made without the route)."""
        candidates = [("bridge", False, c.network)] if c.network.get("IPAddress") else []
        for nid, entry in c.networks.items():
            state = entry.get("State") or {}
            if state.get("IPAddress") and nid in self.network.user:
                candidates.append((entry["Name"], self._internal(nid), state))
        chosen = endpoints.gateway_endpoint(candidates)
        if chosen is not None and (len(candidates) > 1 or after_leave):
            await self.network.route_default(self.paths.netns(c.id), chosen)

    async def _join_bridge_later(self, c: Container, netns_path: Path) -> None:
        """`network connect bridge` on a running container: a further interface, with the
        ports only if it is the first."""
        first = not any((e.get("State") or {}).get("IPAddress") for e in c.networks.values())
        kept = {k: v for k, v in c.network.items() if k in KEPT_BRIDGE_FIELDS}
        state = await self.network.connect(c.id, c.name, c.config, c.host_config, netns_path,
                                           ifname=self._next_ifname(c), publish=first,
                                           default_route=first,
                                           link_local=self._bridge_link_local(c))
        c.network = {**state, "SandboxID": c.id, **kept}

    async def _leave_user_networks(self, c: Container) -> None:
        for entry in c.networks.values():
            state = entry.get("State") or {}
            if state.get("IPAddress"):
                try:
                    await self.network.disconnect(c.id, state)
                except Exception:
                    log.exception("network disconnect failed", extra={"ctx": {"id": c.id}})
            entry["State"] = {k: v for k, v in state.items() if k in ("NetworkID", "SandboxID")}

    def lookup(self, querier_id: str, name: str) -> list[IPv4Address | IPv6Address]:
        """The embedded resolver's forward lookup (see tether.engine.endpoints)."""
        return endpoints.lookup(self.registry.all(), querier_id, name)

    def reverse(self, querier_id: str, address: IPv4Address | IPv6Address) -> str | None:
        """The embedded resolver's PTR lookup."""
        return endpoints.reverse(self.registry.all(), querier_id, address)

    def network_containers(self, network_id: str) -> dict[str, dict[str, str]]:
        """A network's `Containers` map: the running containers with an endpoint on it."""
        out = {}
        for c in self.registry.all():
            if network_id == self.network.network_id:
                state = c.network
            else:
                state = (c.networks.get(network_id) or {}).get("State") or {}
            if state.get("IPAddress") and state.get("NetworkID") == network_id:
                out[c.id] = netrules.container_entry(c.name, state)
        return out

    async def connect_network(self, ref: str, net_ref: str, config: dict[str, Any]) -> None:
        """`POST /networks/{id}/connect`: a running container gets a new interface at once; a
        stopped one joins at its next start."""
        if net_ref in ("host", "none"):
            raise BadRequest("container cannot be disconnected from host network or connected "
                             "to host network" if net_ref == "host" else
                             "container cannot be connected to multiple networks with one of "
                             "the networks in private (none) mode")
        c = self.registry.get(ref)
        if c.network_mode == "host":
            raise BadRequest("container cannot be disconnected from host network or connected "
                             "to host network")
        if c.network_mode == "none" or c.network_mode.startswith("container:"):
            raise BadRequest("container sharing network namespace with another container or "
                             "host cannot be connected to any other network")
        if net_ref in ("bridge", self.network.network_id):
            await self._attach_bridge(c, config)
            return
        record = self.network.find(net_ref)
        async with self.lock(c.id):
            if record.id in c.networks:
                raise Forbidden(f"endpoint with name {c.name.lstrip('/')} already exists in "
                                f"network {record.name}")
            entry = self._endpoint_entry(record, config)
            # kept as sent (dockerd does not resolve nor tidy them here): names the embedded
            # resolver reads at query time, so the linked container need not exist yet
            try:
                for link in config.get("Links") or []:
                    linkrules.parse_link(link)
            except linkrules.LinkError as exc:
                raise ApiError(str(exc), 500) from None
            c.networks[record.id] = entry
            if c.state.status == "running":
                try:
                    await self._join(c, record.id, self.paths.netns(c.id))
                except BaseException:
                    del c.networks[record.id]
                    raise
                await self._route_by_preferred_gateway(c)
                self.files.write_hosts(c)
                self.files.write_resolv(c)
                await self.serve_dns(c)
            else:
                self.files.write_resolv(c)
                entry["Aliases"] = endpoints.merge_aliases(entry.get("Aliases") or [],
                                                           c.short_id)
            self.registry.save(c)
        self.events.publish("network", "connect", record.id,
                            {"container": c.id, "name": record.name, "type": "bridge"})

    async def disconnect_network(self, ref: str, net_ref: str, force: bool) -> None:
        """`POST /networks/{id}/disconnect`: the interface goes; the container stays."""
        if net_ref == "host":
            raise BadRequest("container cannot be disconnected from host network or connected "
                             "to host network")
        if net_ref in ("bridge", self.network.network_id):
            await self._detach_bridge(self.registry.get(ref))
            return
        record = self.network.find(net_ref)
        try:
            c = self.registry.get(ref)
        except NotFound:
            if force:
                return
            raise
        async with self.lock(c.id):
            entry = c.networks.get(record.id)
            if entry is None:
                raise Forbidden(f"container {c.id} is not connected to network {record.name}")
            state = entry.get("State") or {}
            if state.get("IPAddress"):
                await self.network.disconnect(c.id, state)
            del c.networks[record.id]
            if c.state.status == "running":
                await self._route_by_preferred_gateway(c, after_leave=True)
            if c.state.status == "running":  # Docker 20.10 drops every line of its own name
                self.files.drop_own_hosts_lines(c)
            self.registry.save(c)
        self.events.publish("network", "disconnect", record.id,
                            {"container": c.id, "name": record.name, "type": "bridge"})

    def on_bridge(self, c: Container) -> bool:
        return (c.network_mode == "bridge" and not c.network.get("Detached")) \
            or bool(c.network.get("Attached"))

    async def _attach_bridge(self, c: Container, config: dict[str, Any]) -> None:
        """`network connect bridge`: back on the default bridge, or on it beside user networks."""
        netrules.check_endpoint_config("bridge", False, config)
        async with self.lock(c.id):
            if self.on_bridge(c):
                raise Forbidden(f"endpoint with name {c.name.lstrip('/')} already exists in "
                                "network bridge")
            before, index = c.network, c.next_ifindex
            c.network = {"EndpointConfig": {k: config.get(k) for k in ENDPOINT_CONFIG_FIELDS}}
            if c.network_mode != "bridge":
                c.network["Attached"] = True
            if c.state.status == "running":
                try:
                    await self._join_bridge_later(c, self.paths.netns(c.id))
                except BaseException:  # a bad --link-local-ip, say: still off the bridge,
                    c.network, c.next_ifindex = before, index  # its interface name unused
                    raise
                await self._route_by_preferred_gateway(c)
                self.files.write_hosts(c)
            self.registry.save(c)
        self.events.publish("network", "connect", self.network.network_id,
                            {"container": c.id, "name": "bridge", "type": "bridge"})

    async def _detach_bridge(self, c: Container) -> None:
        """Take a container off the default bridge (its interface goes, with the ports it
        published); it stays off at later starts, as in Docker."""
        async with self.lock(c.id):
            if not self.on_bridge(c):
                raise Forbidden(f"container {c.id} is not connected to network bridge")
            if c.network.get("IPAddress"):
                await self.network.disconnect(c.id, c.network)
            c.network = {"Detached": True} if c.network_mode == "bridge" else {}
            if c.state.status == "running":
                await self._route_by_preferred_gateway(c, after_leave=True)
                self.files.write_hosts(c)
            self.registry.save(c)
        self.events.publish("network", "disconnect", self.network.network_id,
                            {"container": c.id, "name": "bridge", "type": "bridge"})

    async def serve_dns(self, c: Container) -> None:
        """Start the embedded resolver in the container's namespace. A failure is logged, not
        raised: the container runs (as it would with an unreachable nameserver)."""
        if self.resolver is None or not c.on_user_network:
            return
        try:
            await self.resolver.serve(c.id, str(self.paths.netns(c.id)), self._dns_upstreams(c))
        except Exception:
            log.exception("embedded DNS failed to start", extra={"ctx": {"id": c.id}})

    def _internal(self, network_id: str) -> bool:
        """Whether a user-defined network is `--internal` (an unknown one is not)."""
        net = self.network.user.get(network_id)
        return bool(net and net.record and net.record.internal)

    def _dns_upstreams(self, c: Container) -> list[str] | None:
        """Where the resolver sends a container's unknown names: nowhere when every network it is
        on is `--internal` (no way out, as in Docker, even though the resolver itself sits in the
        daemon's namespace), else its own `--dns` servers, else the host's (None)."""
        if not c.network.get("IPAddress") and all(map(self._internal, c.networks)):
            return []
        return list(c.host_config.dns or []) or None


def _user_endpoints(c: Container) -> list[tuple[str, dict[str, Any]]]:
    """The container's user-network entries as NetworkManager's views take them."""
    return [(entry["Name"], entry) for entry in c.networks.values()]
