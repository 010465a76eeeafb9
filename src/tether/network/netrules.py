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
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, \
    ip_network
from typing import Any, Callable, Iterable, TypeVar

from tether.rules.errors import ApiError, BadRequest, Forbidden, NotFound
from tether.rules import prune
from tether.rules.filters import check_keys, label_matches, pattern_matches
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
NO_POOL6 = ("could not find an available, non-overlapping IPv6 address pool among the defaults to "
            "assign to the network")
OVERLAP = "Pool overlaps with other one on this address space"
MULTIPLE_SUBNETS = "bridge driver doesn't support multiple subnets"
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
    # IPv6: `enable_ipv6` gives containers addresses from `subnet6` (a subnet given without
    # --ipv6 is only shown, as dockerd shows it); `user_config6` is IPAM.Config's v6 entry
    enable_ipv6: bool = False
    subnet6: str = ""
    gateway6: str = ""
    ip_range6: str = ""
    user_config6: dict[str, str] = field(default_factory=dict)

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

    @property
    def network6(self) -> IPv6Network | None:
        """The IPv6 subnet containers get addresses from (None: an IPv4-only network)."""
        return IPv6Network(self.subnet6, strict=False) if self.enable_ipv6 and self.subnet6 \
            else None

    @property
    def range6(self) -> IPv6Network | None:
        return IPv6Network(self.ip_range6) if self.ip_range6 else None

    def ipam_config(self) -> dict[str, str]:
        """IPAM.Config[0]: what the user gave, or the chosen subnet and gateway."""
        return dict(self.user_config) or {"Subnet": self.subnet, "Gateway": self.gateway}

    def ipam_configs(self) -> list[dict[str, str]]:
        """IPAM.Config: the IPv4 entry, then the IPv6 one as the user gave it (dockerd adds an
        IPv4 pool of its own choice to a network created with an IPv6 subnet only)."""
        return [self.ipam_config(), *([dict(self.user_config6)] if self.user_config6 else [])]


def choose_pool(taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first default pool that overlaps nothing taken (networks, host addresses and routes)."""
    used = [net for net in taken if net.prefixlen > 0]
    for pool in DEFAULT_POOLS:
        if not any(pool.overlaps(net) for net in used):
            return pool
    raise ApiError(NO_POOL, 500)


def parse_ipam(config: dict[str, Any]) -> tuple[IPv4Network, IPv4Address | None, IPv4Network | None]:
    """(subnet, gateway or None, ip range or None) of one IPv4 IPAM.Config entry, as dockerd
    checks it."""
    try:
        subnet = IPv4Network(config["Subnet"])
    except ValueError as exc:
        raise BadRequest(f"invalid subnet {config['Subnet']}: {exc}") from None
    gateway = None
    if config.get("Gateway"):
        try:
            gateway = IPv4Address(config["Gateway"])
        except ValueError:
            raise BadRequest(f"invalid gateway {config['Gateway']}") from None
        if gateway not in subnet:
            raise Forbidden(f"Invalid address {gateway}: It does not belong to any of this "
                            "network's subnets")
    return subnet, gateway, _ip_range(config, subnet, IPv4Network)


def _ip_range(config: dict[str, Any], subnet: Any, network_type: type) -> Any:
    """IPAM.Config's IPRange (None when not given): a network of the subnet's family inside it."""
    if not config.get("IPRange"):
        return None
    try:
        ip_range = network_type(config["IPRange"])
    except ValueError as exc:
        raise BadRequest(f"invalid ip range {config['IPRange']}: {exc}") from None
    if not ip_range.subnet_of(subnet):
        raise Forbidden(f"Invalid Sub-Pool {ip_range} for pool {subnet}")
    return ip_range


def parse_ipam6(config: dict[str, Any]) -> tuple[IPv6Network, IPv6Address, IPv6Network | None]:
    """(subnet, gateway, ip range or None) of an IPv6 IPAM.Config entry, with Docker 20.10's
    texts (checked on the reference engine): a subnet with host bits is taken as its prefix and
    shown as given, the gateway defaults to the prefix's ::1."""
    subnet = IPv6Network(config["Subnet"], strict=False)
    gateway = subnet.network_address + 1
    if config.get("Gateway"):
        try:
            gateway = IPv6Address(config["Gateway"])
        except ValueError:
            raise ApiError(f"invalid gateway address {config['Gateway']} in Ipam configuration",
                           500) from None
        if gateway not in subnet:
            raise ApiError(f"failed to allocate gateway ({gateway}): Requested address is out "
                           "of range", 500)
    return subnet, gateway, _ip_range(config, subnet, IPv6Network)


def split_configs(configs: list[dict[str, Any]], enable_ipv6: bool
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """IPAM.Config's IPv4 and IPv6 entries ({} when absent), refused as dockerd refuses them:
    an unparsable subnet (500, its text), `--ipv6` without an IPv6 subnet (404: Docker 20.10
    has no default IPv6 pool; later Docker's is a ULA one, not matched here), more than one
    subnet of a family (403)."""
    by_family: dict[int, list[dict[str, Any]]] = {4: [], 6: []}
    for config in configs:
        text = str(config.get("Subnet") or "")
        if not text:
            by_family[4].append(config)  # a gateway or range without a subnet: refused later
            continue
        try:
            by_family[ip_network(text, strict=False).version].append(config)
        except ValueError:
            raise ApiError(f"Invalid subnet {text} : invalid CIDR address: {text}", 500) from None
    if enable_ipv6 and not by_family[6]:
        raise NotFound(NO_POOL6)
    if len(by_family[4]) > 1 or len(by_family[6]) > 1:
        raise Forbidden(MULTIPLE_SUBNETS)
    return (by_family[4] or [{}])[0], (by_family[6] or [{}])[0]


def check_overlap(subnet: IPv4Network | IPv6Network,
                  existing: Iterable[IPv4Network | IPv6Network]) -> None:
    """dockerd refuses a subnet that overlaps another network's (of the same family)."""
    if any(subnet.version == net.version and subnet.overlaps(net) for net in existing):
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
    # no interface to add them to: dockerd keeps them, unused; the bridge's are applied
    if ipam_config.get("LinkLocalIPs") and mode in ("host", "none"):
        raise BadRequest("tether applies link-local IPs (--link-local-ip) on bridge networks "
                         "only")


def link_local_ips(values: Iterable[str]) -> tuple[str, ...]:
    """An endpoint's `--link-local-ip` addresses, checked as dockerd checks them when it makes
    the endpoint (at start or connect): every one must parse, then be link-local (169.254/16,
    fe80::/10); dockerd's texts, the first naming the whole list as Go prints it."""
    given = tuple(values)
    try:
        parsed = [ip_address(text) for text in given]
    except ValueError:
        raise ApiError(f"Invalid link-local IP address: [{' '.join(given)}]", 500) from None
    for text, address in zip(given, parsed):
        if not address.is_link_local:
            raise ApiError(f"invalid link local IP address: {text}", 500)
    return given


LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
_DANGLING = {"true": True, "1": True, "false": False, "0": False}


def check_list_filters(filters: dict[str, list[str]]) -> None:
    """`GET /networks?filters=` keys and values dockerd 20.10 refuses, with its texts and
    statuses: an unknown key (400), more than one or an unknown `dangling` value (400), a `type`
    other than builtin/custom (dockerd's unclassified 500)."""
    check_keys(filters, LIST_FILTERS)
    dangling = filters.get("dangling") or []
    if len(dangling) > 1:
        raise BadRequest('got more than one value for filter key "dangling"')
    if dangling and dangling[0] not in _DANGLING:
        raise BadRequest("invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                         "or \"false\" (or \"0\")")
    for kind in filters.get("type") or []:
        if kind not in ("builtin", "custom"):
            raise ApiError(f"invalid filter: 'type'='{kind}'", 500)


def matches_filters(view: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """`GET /networks?filters=` (checked by check_list_filters): name and id as Go regular
    expressions searched in the value (dockerd's filters.Match), driver, scope and type exactly,
    every label, and dangling (a user-defined network without endpoints)."""
    for key, values in filters.items():
        if key == "name" and not any(pattern_matches(v, view["Name"]) for v in values):
            return False
        if key == "id" and not any(pattern_matches(v, view["Id"]) for v in values):
            return False
        if key == "driver" and view["Driver"] not in values:
            return False
        if key == "scope" and view["Scope"] not in values:
            return False
        if key == "type":
            kind = "builtin" if view["Name"] in PREDEFINED else "custom"
            if kind not in values:
                return False
        if key == "label" and not all(label_matches(view["Labels"] or {}, v) for v in values):
            return False
        if key == "dangling" and values:
            # judged by the network's endpoints, as later Docker (moby f0d10ae, API 1.52);
            # dockerd 20.10 filtered its list before adding endpoints to it, so to it every
            # user-defined network was dangling, in use or not
            unused = view["Name"] not in PREDEFINED and not view["Containers"]
            if unused != _DANGLING[values[0]]:
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
            "Driver": "bridge", "EnableIPv6": record.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": {}, "Config": record.ipam_configs()},
            "Internal": record.internal, "Attachable": record.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": dict(record.options), "Labels": dict(record.labels)}


def predefined_view(name: str, network_id: str, created: str, containers: dict[str, Any],
                    bridge: str = "", subnet: str = "", ipv6: bool = False,
                    subnet6: str = "") -> dict[str, Any]:
    """`bridge` (the default bridge: `ipv6` from the daemon's `--ipv6`, `subnet6` its
    `--fixed-cidr-v6`), `host` and `none` as Docker 20.10 shows them."""
    options: dict[str, str] = {}
    config: list[dict[str, str]] = []
    if name == "bridge":
        config = [{"Subnet": subnet}, *([{"Subnet": subnet6}] if subnet6 else [])]
        options = {"com.docker.network.bridge.default_bridge": "true",
                   ICC_OPTION: "true", "com.docker.network.bridge.enable_ip_masquerade": "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   BRIDGE_NAME_OPTION: bridge, MTU_OPTION: "1500"}
    return {"Name": name, "Id": network_id, "Created": created, "Scope": "local",
            "Driver": {"bridge": "bridge", "host": "host", "none": "null"}[name],
            "EnableIPv6": ipv6 and name == "bridge",
            "IPAM": {"Driver": "default", "Options": None, "Config": config},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": options, "Labels": {}}


def container_entry(name: str, endpoint: dict[str, Any]) -> dict[str, str]:
    """One entry of a network's `Containers` map."""
    return {"Name": name.lstrip("/"), "EndpointID": endpoint.get("EndpointID", ""),
            "MacAddress": endpoint.get("MacAddress", ""),
            "IPv4Address": f"{endpoint['IPAddress']}/{endpoint['IPPrefixLen']}"
            if endpoint.get("IPAddress") else "",
            "IPv6Address": f"{endpoint['GlobalIPv6Address']}/{endpoint['GlobalIPv6PrefixLen']}"
            if endpoint.get("GlobalIPv6Address") else ""}


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
    config, config6 = split_configs(ipam_section.get("Config") or [], bool(body.get("EnableIPv6")))
    options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
    if MTU_OPTION in options:
        try:
            int(options[MTU_OPTION])
        except ValueError:
            raise BadRequest(f"invalid mtu {options[MTU_OPTION]!r}") from None
    return {"name": name, "config": config, "config6": config6,
            "ipv6": bool(body.get("EnableIPv6")),
            "internal": bool(body.get("Internal")), "attachable": bool(body.get("Attachable")),
            "labels": dict(body.get("Labels") or {}), "options": options}


def ipv4(text: str) -> IPv4Address:
    """A requested IPv4 address (`--ip`), or dockerd's 400."""
    try:
        return IPv4Address(text)
    except ValueError:
        raise BadRequest(f"invalid IPv4 address: {text}") from None


def check_ipv6_request(record: NetworkRecord, text: str) -> IPv6Address:
    """An `--ip6` for a network: dockerd's 400s for a bad address, a network without an IPv6
    subnet of the user's and an address outside it (texts checked on the reference engine)."""
    address = ipv6(text)
    if not record.user_config6:
        raise BadRequest("user specified IP address is supported only when connecting to "
                         "networks with user configured subnets")
    if address not in IPv6Network(record.subnet6, strict=False):
        raise BadRequest(f"Invalid address {address}: It does not belong to any of this "
                         "network's subnets")
    return address


def ipv6(text: str) -> IPv6Address:
    """A requested IPv6 address (`--ip6`), or dockerd's 400."""
    try:
        return IPv6Address(text)
    except ValueError:
        raise BadRequest(f"invalid IPv6 address: {text}") from None

