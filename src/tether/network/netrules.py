"""User-defined networks: their record and the rules Docker 20.10 applies to them (pure).

A network record is what `network create` decided (subnet, gateway, range, options, labels): it
is written as JSON under the data root and read back at start. The rules here choose a subnet
from Docker's default pools, refuse overlapping ones, find a network by reference and render the
API's views, so they are unit-tested without a kernel. Facts checked on the reference engine:
names are not validated (`bad name` is accepted), a user `--subnet` without `--gateway` shows no
Gateway in IPAM.Config, addresses from an `--ip-range` start at the range's first address.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable, Iterable, TypeVar

from tether.rules.errors import ApiError, BadRequest, Forbidden, NotFound
from tether.rules import prune
from tether.rules.times import parse_rfc3339

# after the default bridge's 172.17.0.0/16: the rest of 172.17-31 in /16s, then 192.168/16 in /20s
DEFAULT_POOLS: tuple[IPv4Network, ...] = (
    *(IPv4Network(f"172.{second}.0.0/16") for second in range(17, 32)),
    *IPv4Network("192.168.0.0/16").subnets(new_prefix=20))
PREDEFINED = ("bridge", "host", "none")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
MTU_OPTION = "com.docker.network.driver.mtu"
NO_POOL = ("could not find an available, non-overlapping IPv4 address pool among the defaults to "
           "assign to the network")
OVERLAP = "Pool overlaps with other one on this address space"
T = TypeVar("T")


@dataclass
class NetworkRecord:
    """One user-defined bridge network as created (IDs are 64 hex, `created` RFC 3339)."""

    id: str
    name: str
    created: str
    subnet: str
    gateway: str
    ip_range: str = ""
    user_config: dict[str, str] = field(default_factory=dict)  # IPAM.Config as the user gave it
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkRecord:
        return cls(**data)

    @property
    def bridge(self) -> str:
        """The bridge device: `br-<12 hex>` unless the user named it."""
        return self.options.get(BRIDGE_NAME_OPTION) or f"br-{self.id[:12]}"

    @property
    def icc(self) -> bool:
        return self.options.get(ICC_OPTION, "true").lower() not in ("false", "0")

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    @property
    def range(self) -> IPv4Network | None:
        return IPv4Network(self.ip_range) if self.ip_range else None

    def ipam_config(self) -> dict[str, str]:
        """IPAM.Config[0]: what the user gave, or the chosen subnet and gateway."""
        return dict(self.user_config) or {"Subnet": self.subnet, "Gateway": self.gateway}


def choose_pool(taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first default pool that overlaps nothing taken (networks, host addresses and routes)."""
    used = [net for net in taken if net.prefixlen > 0]
    for pool in DEFAULT_POOLS:
        if not any(pool.overlaps(net) for net in used):
            return pool
    raise ApiError(NO_POOL, 500)


def parse_ipam(config: dict[str, Any]) -> tuple[IPv4Network, IPv4Address | None, IPv4Network | None]:
    """(subnet, gateway or None, ip range or None) of one IPAM.Config entry, as dockerd checks it."""
    try:
        subnet = IPv4Network(config["Subnet"])
    except ValueError as exc:
        raise BadRequest(f"invalid subnet {config['Subnet']}: {exc}") from None
    gateway = ip_range = None
    if config.get("Gateway"):
        try:
            gateway = IPv4Address(config["Gateway"])
        except ValueError:
            raise BadRequest(f"invalid gateway {config['Gateway']}") from None
        if gateway not in subnet:
            raise Forbidden(f"Invalid address {gateway}: It does not belong to any of this "
                            "network's subnets")
    if config.get("IPRange"):
        try:
            ip_range = IPv4Network(config["IPRange"])
        except ValueError as exc:
            raise BadRequest(f"invalid ip range {config['IPRange']}: {exc}") from None
        if not ip_range.subnet_of(subnet):
            raise Forbidden(f"Invalid Sub-Pool {ip_range} for pool {subnet}")
    return subnet, gateway, ip_range


def check_overlap(subnet: IPv4Network, existing: Iterable[IPv4Network]) -> None:
    """dockerd refuses a subnet that overlaps another network's."""
    if any(subnet.overlaps(net) for net in existing):
        raise Forbidden(OVERLAP)


def find(items: Iterable[T], ref: str,
         ident: Callable[[T], tuple[str, str]] = lambda r: (r.id, r.name)) -> T:
    """dockerd's lookup order: full ID, then exact name, then a unique ID prefix. `ident` gives
    an item's (ID, name)."""
    keyed = [(ident(item), item) for item in items]
    for index in (0, 1):
        for key, item in keyed:
            if key[index] == ref:
                return item
    matches = [item for key, item in keyed if ref and key[0].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFound(f"network {ref} is ambiguous ({len(matches)} matches found based on ID "
                       "prefix)")
    raise NotFound(f"network {ref} not found")


def check_endpoint_config(mode: str, user_network: bool, config: dict[str, Any]) -> None:
    """What dockerd refuses in an EndpointsConfig entry on a network that is not user-defined."""
    if user_network:
        return
    if config.get("Aliases"):
        raise BadRequest("network-scoped aliases are only supported for user-defined networks")
    ipam_config = config.get("IPAMConfig") or {}
    if ipam_config.get("IPv4Address") or ipam_config.get("IPv6Address"):
        raise BadRequest("user specified IP address is supported on user defined networks only")
    if mode == "host" and config.get("Links"):
        raise BadRequest("links are only supported for user-defined networks")


def matches_filters(view: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """`GET /networks?filters=`: name and id by substring/prefix, driver, type, label, scope."""
    for key, values in filters.items():
        if key == "name" and not any(v in view["Name"] for v in values):
            return False
        if key == "id" and not any(view["Id"].startswith(v) or v in view["Id"] for v in values):
            return False
        if key == "driver" and view["Driver"] not in values:
            return False
        if key == "scope" and view["Scope"] not in values:
            return False
        if key == "type":
            kind = "builtin" if view["Name"] in PREDEFINED else "custom"
            if kind not in values:
                return False
        if key == "label" and not all(prune.label_matches(view["Labels"] or {}, v) for v in values):
            return False
        if key == "dangling":
            wanted = values[-1].lower() in ("true", "1")
            dangling = view["Name"] not in PREDEFINED and not view["Containers"]
            if dangling != wanted:
                return False
    return True


def prune_predicate(filters: dict[str, list[str]], now: float) -> Callable[[dict[str, Any]], bool]:
    """Which unused user-defined networks `POST /networks/prune` removes, as dockerd's
    localNetworksPrune decides (rules/prune.py: `until`, `label`, `label!`; other keys refused)."""
    test = prune.parse(filters, prune.NETWORK_FILTERS, now)
    return lambda view: test.matches(parse_rfc3339(view["Created"]), view["Labels"])


def inspect_view(record: NetworkRecord, containers: dict[str, Any]) -> dict[str, Any]:
    """Docker 20.10's `GET /networks/{id}` for a user-defined bridge network."""
    return {"Name": record.name, "Id": record.id, "Created": record.created, "Scope": "local",
            "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": [record.ipam_config()]},
            "Internal": record.internal, "Attachable": record.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": dict(record.options), "Labels": dict(record.labels)}


def predefined_view(name: str, network_id: str, created: str, containers: dict[str, Any],
                    bridge: str = "", subnet: str = "") -> dict[str, Any]:
    """`bridge` (the default bridge), `host` and `none` as Docker 20.10 shows them."""
    options: dict[str, str] = {}
    config: list[dict[str, str]] = []
    if name == "bridge":
        config = [{"Subnet": subnet}]
        options = {"com.docker.network.bridge.default_bridge": "true",
                   ICC_OPTION: "true", "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   BRIDGE_NAME_OPTION: bridge, MTU_OPTION: "1500"}
    return {"Name": name, "Id": network_id, "Created": created, "Scope": "local",
            "Driver": {"bridge": "bridge", "host": "host", "none": "null"}[name],
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": config},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": options, "Labels": {}}


def container_entry(name: str, endpoint: dict[str, Any]) -> dict[str, str]:
    """One entry of a network's `Containers` map."""
    return {"Name": name.lstrip("/"), "EndpointID": endpoint.get("EndpointID", ""),
            "MacAddress": endpoint.get("MacAddress", ""),
            "IPv4Address": f"{endpoint['IPAddress']}/{endpoint['IPPrefixLen']}"
            if endpoint.get("IPAddress") else "",
            "IPv6Address": ""}


def parse_create(body: dict[str, Any]) -> dict[str, Any]:
    """Check a `POST /networks/create` body; the fields the manager needs."""
    name = body.get("Name")
    if not name:
        raise BadRequest("network name cannot be empty") if name == "" else \
            BadRequest("invalid name: name is required")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise NotFound(f'plugin "{driver}" not found') if driver not in ("host", "null") else \
            Forbidden(f"only one instance of \"{driver}\" network is allowed")
    ipam_section = body.get("IPAM") or {}
    configs = ipam_section.get("Config") or []
    if len(configs) > 1:
        raise BadRequest("tether supports one IPv4 subnet per network")
    if body.get("EnableIPv6"):
        raise BadRequest("tether does not support IPv6 networks")
    options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
    if MTU_OPTION in options:
        try:
            int(options[MTU_OPTION])
        except ValueError:
            raise BadRequest(f"invalid mtu {options[MTU_OPTION]!r}") from None
    return {"name": name, "config": configs[0] if configs else {},
            "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
            "labels": dict(body.get("Labels") or {}), "options": options}


def ipv4(text: str) -> IPv4Address:
    """A requested IPv4 address (`--ip`), or dockerd's 400."""
    try:
        return IPv4Address(text)
    except ValueError:
        raise BadRequest(f"invalid IPv4 address: {text}") from None

