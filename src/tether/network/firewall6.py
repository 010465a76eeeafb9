"""Tether's IPv6 nftables table (`ip6` family, the daemon's `--ip6tables`): the IPv6 side of
firewall.py's rules, built from a `Firewall6Config` and replaced whole in one transaction.

What differs from IPv4, and why:
- Published ports on `::` (or one IPv6 host address) are DNATed to the container's IPv6 address
  by maps, as firewall.py does for IPv4, but never for `::1`: IPv6 has no `route_localnet`, so a
  reply to a loopback client that left through a bridge is dropped by the kernel as a martian
  (checked: the container answers, the host never sees it). The manager serves `[::1]` by the
  userland proxy instead; every other local IPv6 address goes through the kernel.
- No loopback guard: without route_localnet the kernel itself drops `::1` arriving on a bridge.
- Isolation covers every bridge of the daemon, IPv6 or not, so a container cannot reach another
  network by IPv6 even if it managed to give itself an address.
- `--icc=false` link exceptions are IPv4-only (legacy links carry IPv4 addresses): on such a
  bridge IPv6 between containers is dropped.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from tether.network.firewall import (ACCEPT, ANY_IP, DROP, LOCAL_DESTINATION, MASQUERADE,
                                     ONE_IP, PORTS_CHAIN, PRIO_DSTNAT, PRIO_FILTER, PRIO_SRCNAT,
                                     Expr, _ct, _match, _meta, _port, _run_nft, Mapping,
                                     dnat_from, map_commands)

FAMILY = "ip6"
LOOPBACK6 = "::1"


@dataclass(frozen=True)
class Bridge6:
    """One of the daemon's bridges; `subnet` and `gateway` empty on a bridge without IPv6."""

    bridge: str
    subnet: str = ""
    gateway: str = ""
    icc: bool = True
    internal: bool = False


@dataclass(frozen=True)
class Firewall6Config:
    table: str
    bridges: tuple[Bridge6, ...]
    mappings: tuple[Mapping, ...] = ()


def _addr6(field: str, value: str, op: str = "==") -> Expr:
    net = ipaddress.IPv6Network(value, strict=False)
    right: Any = str(net.network_address) if net.prefixlen == 128 else {
        "prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return _match({"payload": {"protocol": "ip6", "field": field}}, right, op)


Targets = dict[tuple[Any, ...], tuple[str, int]]


def _port_maps(mappings: tuple[Mapping, ...]) -> dict[str, Targets]:
    maps: dict[str, Targets] = {ANY_IP: {}, ONE_IP: {}}
    for m in mappings:
        host = ipaddress.IPv6Address(m.host_ip)
        ipaddress.IPv6Address(m.container_ip)
        if m.proto not in ("tcp", "udp", "sctp"):
            raise ValueError(f"unsupported protocol {m.proto!r}")
        key = (m.proto, m.host_port) if host.is_unspecified else (str(host), m.proto,
                                                                    m.host_port)
        target = (m.container_ip, m.container_port)
        if maps[ANY_IP if host.is_unspecified else ONE_IP].setdefault(key, target) != target:
            raise ValueError(f"host port [{m.host_ip}]:{m.host_port}/{m.proto} mapped twice")
    return maps


def _forward(cfg: Firewall6Config) -> list[list[Expr]]:
    names = [b.bridge for b in cfg.bridges]
    rules: list[list[Expr]] = []
    for b in cfg.bridges:  # isolation first, replies included
        if b.internal:
            rules += [[_meta("iifname", b.bridge), _meta("oifname", b.bridge, "!="), DROP],
                      [_meta("oifname", b.bridge), _meta("iifname", b.bridge, "!="), DROP]]
        elif len(names) > 1:
            others = {"set": [name for name in names if name != b.bridge]}
            rules.append([_meta("iifname", b.bridge), _meta("oifname", others), DROP])
    rules.append([_ct("state", ["established", "related"]), ACCEPT])
    for b in cfg.bridges:
        into, out_of = _meta("oifname", b.bridge), _meta("iifname", b.bridge)
        if b.subnet and not b.internal:
            rules.append([out_of, _meta("oifname", b.bridge, "!="), ACCEPT])
        if b.subnet:
            rules.append([into, _ct("status", ["dnat"]), ACCEPT])
            subnet = ipaddress.IPv6Network(b.subnet, strict=False)
            targets = sorted({(m.proto, m.container_ip, m.container_port) for m in cfg.mappings
                              if ipaddress.IPv6Address(m.container_ip) in subnet})
            rules += [[_meta("iifname", b.bridge, "!="), into, _addr6("daddr", ip),
                       _port(proto, "dport", port), ACCEPT] for proto, ip, port in targets]
            if b.icc:
                rules.append([out_of, into, ACCEPT])
        rules.append([into, DROP])
    return rules


def _postrouting(cfg: Firewall6Config) -> list[list[Expr]]:
    """Hairpin connections (a container reaching a published port through a host address) and
    the subnet going out are masqueraded; an internal network's never goes out."""
    rules: list[list[Expr]] = []
    for b in cfg.bridges:
        if not b.subnet:
            continue
        rules.append([_meta("oifname", b.bridge), _addr6("saddr", b.subnet),
                      _ct("status", ["dnat"]), {"snat": {"family": "ip6", "addr": b.gateway}}])
        if not b.internal:
            rules.append([_meta("oifname", b.bridge, "!="), _addr6("saddr", b.subnet),
                          MASQUERADE])
    return rules


def build_ruleset(cfg: Firewall6Config) -> dict[str, Any]:
    """The nft JSON document that replaces the ip6 table with exactly this configuration."""
    table = {"table": {"family": FAMILY, "name": cfg.table}}
    commands: list[dict[str, Any]] = [{"add": table}, {"delete": table}, {"add": table}]
    ids = {"family": FAMILY, "table": cfg.table}
    commands += [{"add": {"map": {**ids, **spec}}}
                 for kind, elements in _port_maps(cfg.mappings).items()
                 for spec in map_commands(kind, elements, "ip6")]

    def base(name: str, kind: str, hook: str, prio: int) -> dict[str, Any]:
        return {"name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}

    to_ports = [LOCAL_DESTINATION, _addr6("daddr", LOOPBACK6, "!="),
                {"jump": {"target": PORTS_CHAIN}}]
    chains = [({"name": PORTS_CHAIN}, [dnat_from(ONE_IP, "ip6"), dnat_from(ANY_IP, "ip6")]),
              (base("prerouting", "nat", "prerouting", PRIO_DSTNAT), [to_ports]),
              (base("output", "nat", "output", PRIO_DSTNAT), [to_ports]),
              (base("postrouting", "nat", "postrouting", PRIO_SRCNAT), _postrouting(cfg)),
              (base("forward", "filter", "forward", PRIO_FILTER), _forward(cfg))]
    for chain, rules in chains:
        commands.append({"add": {"chain": {**ids, **chain}}})
        commands += [{"add": {"rule": {**ids, "chain": chain["name"], "expr": expr}}}
                     for expr in rules]
    return {"nftables": commands}


def apply(cfg: Firewall6Config) -> None:
    """Replace the ip6 table atomically, in the calling thread's network namespace."""
    _run_nft(build_ruleset(cfg))


def remove(table: str) -> None:
    """Delete the ip6 table (absent is fine): no network has IPv6 any more, or none may."""
    ref = {"table": {"family": FAMILY, "name": table}}
    _run_nft({"nftables": [{"add": ref}, {"delete": ref}]})
