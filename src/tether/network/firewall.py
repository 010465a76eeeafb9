"""Tether's nftables table: published ports by DNAT, masquerade, hairpin and forward rules.

The kernel forwards every published port: no process per port. The whole table is rebuilt from
a `FirewallConfig` and replaced in one nftables JSON transaction (add table, delete table, add
table, chains, rules), so a crash never leaves half a ruleset, re-applying is idempotent, and the
daemon never has to diff rules against what the kernel holds.

What the rules do (Docker with `userland-proxy=false`, made safe):
- prerouting and output: a destination that is a local address (`fib daddr type local`) goes
  through the `ports` chain, which DNATs by two maps: (host IP, proto, port) for mappings on one
  host IP, then (proto, port) for mappings on every local address. Output makes the host's
  own clients (loopback included) reach containers.
- a guard before DNAT drops packets for 127.0.0.0/8 that did not come from `lo`: the bridge needs
  `route_localnet=1` for DNATed loopback traffic, and without the guard a container (or a host on
  a shared segment) could reach the host's loopback services or a port published on 127.0.0.1.
- postrouting masquerades loopback sources leaving on the bridge (a container cannot answer
  127.0.0.1), DNATed connections from the subnet back onto the bridge (hairpin: a container
  reaching its own or a sibling's port through a host address), and the subnet leaving by any
  other interface.
- forward accepts replies, the bridge going out, DNATed connections in, connections to a
  published port at the container's own address from outside the bridge (as Docker does),
  bridge to bridge when
  `icc` (else only `accepts`, which needs br_netfilter to see bridged frames), and drops other new
  connections into the bridge: a container is reached through its published ports only.

The builders take the table's family ("ip" or "ip6"): firewall6.py's IPv6 table is built by the
same functions, and only what really differs between the families branches on it.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Callable

from tether.network import nftlib

FAMILY = "ip"
PORTS_CHAIN = "ports"
ANY_IP = "any-ip"
ONE_IP = "one-ip"
LOOPBACK = "127.0.0.0/8"
# Hook priorities: the guard runs before DNAT (-100), like a mangle chain.
PRIO_GUARD = -150
PRIO_DSTNAT = -100
PRIO_FILTER = 0
PRIO_SRCNAT = 100

Expr = dict[str, Any]


@dataclass(frozen=True)
class Mapping:
    """One published port served by DNAT, of either family: in this table (IPv4) host_ip
    "0.0.0.0" means every local address; in firewall6.py's (to a container's IPv6 address) "::"
    means every local IPv6 address but `::1`, which the userland proxy serves."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int


@dataclass(frozen=True)
class BridgeNet:
    """A bridge of the daemon: isolated from every other bridge of the table, and with no way in
    or out at all when `internal`. `subnet` and `gateway` are of the table's family, empty (in
    the ip6 table only) on a bridge without IPv6: isolated and dropped into, nothing else."""

    bridge: str
    subnet: str = ""
    gateway: str = ""
    icc: bool = True
    internal: bool = False


@dataclass(frozen=True)
class FirewallConfig:
    """Everything the table depends on. `accepts` are (proto, src_ip, dst_ip, dst_port) that
    must pass between containers when `icc` is False (links)."""

    table: str
    bridge: str
    subnet: str
    mappings: tuple[Mapping, ...] = ()
    icc: bool = True
    accepts: tuple[tuple[str, str, str, int], ...] = ()
    gateway: str = ""   # the bridge's address: a static SNAT target, cheaper than masquerade
    networks: tuple[BridgeNet, ...] = ()   # user-defined networks, each on a bridge of its own

    def bridges(self) -> tuple[BridgeNet, ...]:
        """The default bridge first, then the user networks' bridges."""
        return (BridgeNet(self.bridge, self.subnet, self.gateway, self.icc), *self.networks)


def _match(left: Expr, right: Any, op: str = "==") -> Expr:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str, value: str, op: str = "==") -> Expr:
    return _match({"meta": {"key": key}}, value, op)


# each family's address and network types: a value of the other family is refused
_ADDRESS: dict[str, Callable[[str], Any]] = {"ip": ipaddress.IPv4Address,
                                             "ip6": ipaddress.IPv6Address}
_NETWORK: dict[str, Callable[..., Any]] = {"ip": ipaddress.IPv4Network,
                                           "ip6": ipaddress.IPv6Network}


def _addr(field: str, value: str, op: str = "==", family: str = FAMILY) -> Expr:
    """`ip|ip6 saddr|daddr` against an address or a prefix."""
    net = _NETWORK[family](value, strict=False)
    right: Any = str(net.network_address) if net.prefixlen == net.max_prefixlen else {
        "prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return _match({"payload": {"protocol": family, "field": field}}, right, op)


def _port(proto: str, field: str, port: int) -> Expr:
    return _match({"payload": {"protocol": proto, "field": field}}, port)


def _ct(key: str, values: list[str]) -> Expr:
    return _match({"ct": {"key": key}}, values, "in")


LOCAL_DESTINATION = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}
MASQUERADE: Expr = {"masquerade": None}


Targets = dict[tuple[Any, ...], tuple[str, int]]


def _port_maps(mappings: tuple[Mapping, ...], family: str = FAMILY) -> dict[str, Targets]:
    """(proto, port) -> target for mappings on every local address, (ip, proto, port) -> target
    for those on one host IP. Maps rather than a rule per mapping: one lookup per new connection,
    and 200 ports load in about the time of one. Both addresses must be of the table's family
    (in the ip table, IPv6 host addresses belong to the userland proxy)."""
    maps: dict[str, Targets] = {ANY_IP: {}, ONE_IP: {}}
    for m in mappings:
        host = _ADDRESS[family](m.host_ip)
        _ADDRESS[family](m.container_ip)
        if m.proto not in ("tcp", "udp", "sctp"):
            raise ValueError(f"unsupported protocol {m.proto!r}")
        key = (m.proto, m.host_port) if host.is_unspecified else (str(host), m.proto,
                                                                    m.host_port)
        target = (m.container_ip, m.container_port)
        if maps[ANY_IP if host.is_unspecified else ONE_IP].setdefault(key, target) != target:
            shown = m.host_ip if family == "ip" else f"[{m.host_ip}]"
            raise ValueError(f"host port {shown}:{m.host_port}/{m.proto} mapped twice")
    return maps


def _addr_type(family: str) -> str:
    return "ipv6_addr" if family == "ip6" else "ipv4_addr"


def map_commands(kind: str, elements: Targets, family: str = "ip") -> list[dict[str, Any]]:
    """The address map and the port map of one kind. Two maps with scalar values because nft
    1.0.6's JSON parser cannot load a map whose values are `addr . port` concatenations.
    `family` is the table's, "ip" or "ip6" (the ip6 table keeps its own maps)."""
    addr = _addr_type(family)
    key_type = ["inet_proto", "inet_service"] if kind == ANY_IP else [addr, "inet_proto",
                                                                      "inet_service"]
    commands = []
    for index, value_type in enumerate((addr, "inet_service")):
        spec: dict[str, Any] = {"name": f"{kind}-{value_type}", "type": key_type, "map": value_type}
        if elements:
            spec["elem"] = [[{"concat": list(key)}, target[index]]
                            for key, target in elements.items()]
        commands.append(spec)
    return commands


def dnat_from(kind: str, family: str = "ip") -> list[Expr]:
    """`dnat to KEY map @addresses : KEY map @ports`, with KEY
    `[ip daddr .] meta l4proto . th dport`."""
    parts: list[Expr] = [{"meta": {"key": "l4proto"}},
                         {"payload": {"protocol": "th", "field": "dport"}}]
    if kind == ONE_IP:
        parts.insert(0, {"payload": {"protocol": family, "field": "daddr"}})
    key = {"concat": parts}
    return [{"dnat": {"family": family,
                      "addr": {"map": {"key": key, "data": f"@{kind}-{_addr_type(family)}"}},
                      "port": {"map": {"key": key, "data": f"@{kind}-inet_service"}}}}]


def _isolation(bridges: tuple[BridgeNet, ...]) -> list[list[Expr]]:
    """As Docker's DOCKER-ISOLATION chains, ahead of everything (replies included): nothing
    crosses from one of the table's bridges to another, and an internal network's bridge
    neither sends out nor receives from outside."""
    names = [net.bridge for net in bridges]
    rules: list[list[Expr]] = []
    for net in bridges:
        if net.internal:
            rules += [[_meta("iifname", net.bridge), _meta("oifname", net.bridge, "!="), DROP],
                      [_meta("oifname", net.bridge), _meta("iifname", net.bridge, "!="), DROP]]
        elif len(names) > 1:
            others = {"set": [name for name in names if name != net.bridge]}
            rules.append([_meta("iifname", net.bridge), _meta("oifname", others), DROP])
    return rules


def _forward_bridge(net: BridgeNet, mappings: tuple[Mapping, ...],
                    accepts: tuple[tuple[str, str, str, int], ...],
                    family: str) -> list[list[Expr]]:
    """One bridge's forward rules: out, DNATed in, published ports, bridge to bridge, drop.
    A bridge without an address of the family (IPv4-only, in the ip6 table) only drops."""
    into_bridge = _meta("oifname", net.bridge)
    if not net.subnet:
        return [[into_bridge, DROP]]
    from_bridge = _meta("iifname", net.bridge)
    subnet = _NETWORK[family](net.subnet, strict=False)
    rules = [] if net.internal else [[from_bridge, _meta("oifname", net.bridge, "!="), ACCEPT]]
    rules.append([into_bridge, _ct("status", ["dnat"]), ACCEPT])
    # as Docker's DOCKER chain: a published container port is also open at the container's own
    # address to whoever can route to it
    targets = sorted({(m.proto, m.container_ip, m.container_port) for m in mappings
                      if _ADDRESS[family](m.container_ip) in subnet})
    rules += [[_meta("iifname", net.bridge, "!="), into_bridge, _addr("daddr", ip, family=family),
               _port(proto, "dport", port), ACCEPT] for proto, ip, port in targets]
    if net.icc:
        rules.append([from_bridge, into_bridge, ACCEPT])
    else:
        rules += [[from_bridge, into_bridge, _addr("saddr", src), _addr("daddr", dst),
                   _port(proto, "dport", port), ACCEPT] for proto, src, dst, port in accepts]
    rules.append([into_bridge, DROP])
    return rules


def _forward(bridges: tuple[BridgeNet, ...], mappings: tuple[Mapping, ...],
             accepts: tuple[tuple[str, str, str, int], ...], family: str) -> list[list[Expr]]:
    """Isolation, replies, then each bridge's rules; `accepts` (links, IPv4 only) belong to the
    first bridge, the default one."""
    rules = _isolation(bridges)
    rules.append([_ct("state", ["established", "related"]), ACCEPT])
    for index, net in enumerate(bridges):
        rules += _forward_bridge(net, mappings, accepts if index == 0 else (), family)
    return rules


def _postrouting(bridges: tuple[BridgeNet, ...], family: str) -> list[list[Expr]]:
    """Sources a container cannot answer become the bridge's address: loopback clients (IPv4
    only: IPv6 has no route_localnet, `::1` never reaches a bridge) and hairpin connections by
    a static SNAT to the gateway when it is known (no per-connection address lookup, as
    masquerade does), the subnet going out by masquerade (never for an internal network)."""
    rules: list[list[Expr]] = []
    for net in bridges:
        if not net.subnet:
            continue
        on_bridge = _meta("oifname", net.bridge)
        snat = {"addr": net.gateway} if family == "ip" else {"family": family,
                                                             "addr": net.gateway}
        to_bridge = {"snat": snat} if net.gateway else MASQUERADE
        if family == "ip":
            rules.append([on_bridge, _addr("saddr", LOOPBACK), to_bridge])
        rules.append([on_bridge, _addr("saddr", net.subnet, family=family),
                      _ct("status", ["dnat"]), to_bridge])
        if not net.internal:
            rules.append([_meta("oifname", net.bridge, "!="),
                          _addr("saddr", net.subnet, family=family), MASQUERADE])
    return rules


Chains = list[tuple[dict[str, Any], list[list[Expr]]]]


def _chains(family: str, bridges: tuple[BridgeNet, ...], mappings: tuple[Mapping, ...],
           accepts: tuple[tuple[str, str, str, int], ...] = ()) -> Chains:
    """(chain attributes, rules) in the order they are added. The ip table guards loopback
    against DNAT from outside; the ip6 table never DNATs `::1` (the userland proxy serves it)."""
    def base(name: str, kind: str, hook: str, prio: int) -> dict[str, Any]:
        return {"name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}

    if family == "ip":
        to_ports = [LOCAL_DESTINATION, {"jump": {"target": PORTS_CHAIN}}]
        guard = [(base("guard", "filter", "prerouting", PRIO_GUARD),
                  [[_meta("iifname", "lo", "!="), _addr("daddr", LOOPBACK), DROP]])]
    else:
        to_ports = [LOCAL_DESTINATION, _addr("daddr", "::1", "!=", family),
                    {"jump": {"target": PORTS_CHAIN}}]
        guard = []
    return [
        ({"name": PORTS_CHAIN}, [dnat_from(ONE_IP, family), dnat_from(ANY_IP, family)]),
        *guard,
        (base("prerouting", "nat", "prerouting", PRIO_DSTNAT), [to_ports]),
        (base("output", "nat", "output", PRIO_DSTNAT), [to_ports]),
        (base("postrouting", "nat", "postrouting", PRIO_SRCNAT), _postrouting(bridges, family)),
        (base("forward", "filter", "forward", PRIO_FILTER),
         _forward(bridges, mappings, accepts, family)),
    ]


def _table(name: str, family: str) -> dict[str, Any]:
    return {"table": {"family": family, "name": name}}


def document(family: str, table: str, bridges: tuple[BridgeNet, ...],
             mappings: tuple[Mapping, ...],
             accepts: tuple[tuple[str, str, str, int], ...] = ()) -> dict[str, Any]:
    """The nft JSON document that replaces a table of `family` with exactly these bridges and
    mappings: the table added, deleted and added again, its maps, its chains and rules. The
    mappings are checked (maps built) before any rule is."""
    maps = _port_maps(mappings, family)
    commands: list[dict[str, Any]] = [{"add": _table(table, family)},
                                      {"delete": _table(table, family)},
                                      {"add": _table(table, family)}]
    ids = {"family": family, "table": table}
    commands += [{"add": {"map": {**ids, **spec}}}
                 for kind, elements in maps.items()
                 for spec in map_commands(kind, elements, family)]
    for chain, rules in _chains(family, bridges, mappings, accepts):
        commands.append({"add": {"chain": {**ids, **chain}}})
        commands += [{"add": {"rule": {**ids, "chain": chain["name"], "expr": expr}}}
                     for expr in rules]
    return {"nftables": commands}


def build_ruleset(cfg: FirewallConfig) -> dict[str, Any]:
    """The nft JSON document that replaces the table with exactly this configuration."""
    ipaddress.IPv4Network(cfg.subnet, strict=False)
    return document(FAMILY, cfg.table, cfg.bridges(), cfg.mappings, cfg.accepts)


def load(doc: dict[str, Any]) -> None:
    """Run one nft JSON document as one transaction, in the calling thread's network namespace."""
    nftlib.run(json.dumps(doc).encode())


def apply(cfg: FirewallConfig) -> None:
    """Replace tether's table atomically, in the calling thread's network namespace."""
    load(build_ruleset(cfg))


def removal(table: str, family: str = FAMILY) -> list[dict[str, Any]]:
    """The commands that delete the table; adding it first in the same transaction makes an
    absent table fine."""
    return [{"add": _table(table, family)}, {"delete": _table(table, family)}]


def remove(table: str, family: str = FAMILY) -> None:
    """Delete the table, in the calling thread's network namespace."""
    load({"nftables": removal(table, family)})
