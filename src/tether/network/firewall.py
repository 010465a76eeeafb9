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
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

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
    """A user-defined network's bridge: isolated from every other bridge of the table, and
    with no way in or out at all when `internal`."""

    bridge: str
    subnet: str
    gateway: str
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


def _addr(field: str, value: str, op: str = "==") -> Expr:
    """`ip saddr|daddr` against an address or a prefix."""
    net = ipaddress.IPv4Network(value, strict=False)
    right: Any = str(net.network_address) if net.prefixlen == 32 else {
        "prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return _match({"payload": {"protocol": "ip", "field": field}}, right, op)


def _port(proto: str, field: str, port: int) -> Expr:
    return _match({"payload": {"protocol": proto, "field": field}}, port)


def _ct(key: str, values: list[str]) -> Expr:
    return _match({"ct": {"key": key}}, values, "in")


LOCAL_DESTINATION = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}
MASQUERADE: Expr = {"masquerade": None}


def _check(m: Mapping) -> None:
    ipaddress.IPv4Address(m.host_ip)  # IPv6 host addresses belong to the userland proxy
    ipaddress.IPv4Address(m.container_ip)
    if m.proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"unsupported protocol {m.proto!r}")


Targets = dict[tuple[Any, ...], tuple[str, int]]


def _port_maps(mappings: tuple[Mapping, ...]) -> dict[str, Targets]:
    """(proto, port) -> target for mappings on every local address, (ip, proto, port) -> target
    for those on one host IP. Maps rather than a rule per mapping: one lookup per new connection,
    and 200 ports load in about the time of one."""
    maps: dict[str, Targets] = {ANY_IP: {}, ONE_IP: {}}
    for m in mappings:
        _check(m)
        wildcard = ipaddress.IPv4Address(m.host_ip).is_unspecified
        key = (m.proto, m.host_port) if wildcard else (m.host_ip, m.proto, m.host_port)
        target = (m.container_ip, m.container_port)
        if maps[ANY_IP if wildcard else ONE_IP].setdefault(key, target) != target:
            raise ValueError(f"host port {m.host_ip}:{m.host_port}/{m.proto} mapped twice")
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


def _isolation(cfg: FirewallConfig) -> list[list[Expr]]:
    """As Docker's DOCKER-ISOLATION chains, ahead of everything (replies included): nothing
    crosses from one of the table's bridges to another, and an internal network's bridge
    neither sends out nor receives from outside."""
    if not cfg.networks:
        return []
    names = [net.bridge for net in cfg.bridges()]
    rules: list[list[Expr]] = []
    for net in cfg.bridges():
        if net.internal:
            rules += [[_meta("iifname", net.bridge), _meta("oifname", net.bridge, "!="), DROP],
                      [_meta("oifname", net.bridge), _meta("iifname", net.bridge, "!="), DROP]]
        else:
            others = {"set": [name for name in names if name != net.bridge]}
            rules.append([_meta("iifname", net.bridge), _meta("oifname", others), DROP])
    return rules


def _forward_bridge(net: BridgeNet, mappings: tuple[Mapping, ...],
                    accepts: tuple[tuple[str, str, str, int], ...]) -> list[list[Expr]]:
    """One bridge's forward rules: out, DNATed in, published ports, bridge to bridge, drop."""
    into_bridge = _meta("oifname", net.bridge)
    from_bridge = _meta("iifname", net.bridge)
    subnet = ipaddress.IPv4Network(net.subnet, strict=False)
    rules = [] if net.internal else [[from_bridge, _meta("oifname", net.bridge, "!="), ACCEPT]]
    rules.append([into_bridge, _ct("status", ["dnat"]), ACCEPT])
    # as Docker's DOCKER chain: a published container port is also open at the container's own
    # address to whoever can route to it
    targets = sorted({(m.proto, m.container_ip, m.container_port) for m in mappings
                      if ipaddress.IPv4Address(m.container_ip) in subnet})
    rules += [[_meta("iifname", net.bridge, "!="), into_bridge, _addr("daddr", ip),
               _port(proto, "dport", port), ACCEPT] for proto, ip, port in targets]
    if net.icc:
        rules.append([from_bridge, into_bridge, ACCEPT])
    else:
        rules += [[from_bridge, into_bridge, _addr("saddr", src), _addr("daddr", dst),
                   _port(proto, "dport", port), ACCEPT] for proto, src, dst, port in accepts]
    rules.append([into_bridge, DROP])
    return rules


def _forward(cfg: FirewallConfig) -> list[list[Expr]]:
    rules = _isolation(cfg)
    rules.append([_ct("state", ["established", "related"]), ACCEPT])
    for index, net in enumerate(cfg.bridges()):
        rules += _forward_bridge(net, cfg.mappings, cfg.accepts if index == 0 else ())
    return rules


def _postrouting(cfg: FirewallConfig) -> list[list[Expr]]:
    """Sources a container cannot answer become the bridge's address: loopback clients and
    hairpin connections by a static SNAT to the gateway when it is known (no per-connection
    address lookup, as masquerade does), the subnet going out by masquerade (never for an
    internal network)."""
    rules: list[list[Expr]] = []
    for net in cfg.bridges():
        on_bridge = _meta("oifname", net.bridge)
        to_bridge = {"snat": {"addr": net.gateway}} if net.gateway else MASQUERADE
        rules += [[on_bridge, _addr("saddr", LOOPBACK), to_bridge],
                  [on_bridge, _addr("saddr", net.subnet), _ct("status", ["dnat"]), to_bridge]]
        if not net.internal:
            rules.append([_meta("oifname", net.bridge, "!="), _addr("saddr", net.subnet),
                          MASQUERADE])
    return rules


def _chains(cfg: FirewallConfig) -> list[tuple[dict[str, Any], list[list[Expr]]]]:
    """(chain attributes, rules) in the order they are added."""
    def base(name: str, kind: str, hook: str, prio: int) -> dict[str, Any]:
        return {"name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}

    to_ports = [LOCAL_DESTINATION, {"jump": {"target": PORTS_CHAIN}}]
    return [
        ({"name": PORTS_CHAIN}, [dnat_from(ONE_IP), dnat_from(ANY_IP)]),
        (base("guard", "filter", "prerouting", PRIO_GUARD),
         [[_meta("iifname", "lo", "!="), _addr("daddr", LOOPBACK), DROP]]),
        (base("prerouting", "nat", "prerouting", PRIO_DSTNAT), [to_ports]),
        (base("output", "nat", "output", PRIO_DSTNAT), [to_ports]),
        (base("postrouting", "nat", "postrouting", PRIO_SRCNAT), _postrouting(cfg)),
        (base("forward", "filter", "forward", PRIO_FILTER), _forward(cfg)),
    ]


def _table(name: str) -> dict[str, Any]:
    return {"table": {"family": FAMILY, "name": name}}


def build_ruleset(cfg: FirewallConfig) -> dict[str, Any]:
    """The nft JSON document that replaces the table with exactly this configuration."""
    ipaddress.IPv4Network(cfg.subnet, strict=False)
    commands: list[dict[str, Any]] = [{"add": _table(cfg.table)}, {"delete": _table(cfg.table)},
                                      {"add": _table(cfg.table)}]
    ids = {"family": FAMILY, "table": cfg.table}
    commands += [{"add": {"map": {**ids, **spec}}}
                 for kind, elements in _port_maps(cfg.mappings).items()
                 for spec in map_commands(kind, elements)]
    for chain, rules in _chains(cfg):
        commands.append({"add": {"chain": {**ids, **chain}}})
        commands += [{"add": {"rule": {**ids, "chain": chain["name"], "expr": expr}}}
                     for expr in rules]
    return {"nftables": commands}


def _run_nft(document: dict[str, Any]) -> None:
    nftlib.run(json.dumps(document).encode())


def apply(cfg: FirewallConfig) -> None:
    """Replace tether's table atomically, in the calling thread's network namespace."""
    _run_nft(build_ruleset(cfg))


def remove(table: str) -> None:
    """Delete the table; adding it first in the same transaction makes an absent table fine."""
    _run_nft({"nftables": [{"add": _table(table)}, {"delete": _table(table)}]})
