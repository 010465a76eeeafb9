"""The nft JSON document of tether's table (structure only; traffic is in the integration tests)."""
from __future__ import annotations

from typing import Any

import pytest

from tether.network.firewall import FirewallConfig, Mapping, build_ruleset

CFG = FirewallConfig("tether", "tether0", "172.17.0.0/16", (
    Mapping("tcp", "0.0.0.0", 8080, "172.17.0.2", 80),
    Mapping("udp", "127.0.0.1", 5353, "172.17.0.3", 53),
))


def commands(cfg: FirewallConfig = CFG) -> list[dict[str, Any]]:
    return build_ruleset(cfg)["nftables"]


def added(kind: str, cfg: FirewallConfig = CFG) -> list[dict[str, Any]]:
    return [c["add"][kind] for c in commands(cfg) if kind in c.get("add", {})]


def rules(chain: str, cfg: FirewallConfig = CFG) -> list[list[dict[str, Any]]]:
    return [r["expr"] for r in added("rule", cfg) if r["chain"] == chain]


def test_the_table_is_replaced_in_one_transaction():
    table = {"table": {"family": "ip", "name": "tether"}}
    assert commands()[:3] == [{"add": table}, {"delete": table}, {"add": table}]
    assert all(list(c) == ["add"] for c in commands()[3:])


def test_base_chains_and_hooks():
    hooks = {c["name"]: (c.get("type"), c.get("hook"), c.get("prio")) for c in added("chain")}
    assert hooks == {"ports": (None, None, None),
                     "guard": ("filter", "prerouting", -150),
                     "prerouting": ("nat", "prerouting", -100),
                     "output": ("nat", "output", -100),
                     "postrouting": ("nat", "postrouting", 100),
                     "forward": ("filter", "forward", 0)}


def test_local_destinations_jump_to_the_port_maps():
    local = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                       "right": "local"}}
    for chain in ("prerouting", "output"):
        assert rules(chain) == [[local, {"jump": {"target": "ports"}}]]
    specific, wildcard = rules("ports")
    assert specific[0]["dnat"]["addr"]["map"]["data"] == "@one-ip-ipv4_addr"
    assert specific[0]["dnat"]["port"]["map"]["key"]["concat"][0] == {
        "payload": {"protocol": "ip", "field": "daddr"}}
    assert wildcard[0]["dnat"]["port"]["map"]["data"] == "@any-ip-inet_service"
    assert len(wildcard[0]["dnat"]["addr"]["map"]["key"]["concat"]) == 2


def test_mappings_become_map_elements():
    maps = {m["name"]: m.get("elem") for m in added("map")}
    assert maps == {
        "any-ip-ipv4_addr": [[{"concat": ["tcp", 8080]}, "172.17.0.2"]],
        "any-ip-inet_service": [[{"concat": ["tcp", 8080]}, 80]],
        "one-ip-ipv4_addr": [[{"concat": ["127.0.0.1", "udp", 5353]}, "172.17.0.3"]],
        "one-ip-inet_service": [[{"concat": ["127.0.0.1", "udp", 5353]}, 53]],
    }
    empty = {m["name"]: m.get("elem") for m in added("map", FirewallConfig("t", "b", "10.0.0.0/8"))}
    assert set(empty.values()) == {None}  # nft refuses an empty element list


def test_duplicate_and_invalid_mappings_are_refused():
    twice = (Mapping("tcp", "0.0.0.0", 80, "172.17.0.2", 80),
             Mapping("tcp", "0.0.0.0", 80, "172.17.0.3", 80))
    with pytest.raises(ValueError, match="mapped twice"):
        build_ruleset(FirewallConfig("t", "b", "172.17.0.0/16", twice))
    same = twice[:1] * 2
    assert len(added("map", FirewallConfig("t", "b", "172.17.0.0/16", same))[0]["elem"]) == 1
    for bad in (Mapping("tcp", "::", 80, "172.17.0.2", 80), Mapping("icmp", "0.0.0.0", 80,
                                                                    "172.17.0.2", 80)):
        with pytest.raises(ValueError):
            build_ruleset(FirewallConfig("t", "b", "172.17.0.0/16", (bad,)))


def _texts(chain: str, cfg: FirewallConfig = CFG) -> list[str]:
    """A compact rendering of each rule's matches and verdict, for readable assertions."""
    out = []
    for expr in rules(chain, cfg):
        parts = []
        for e in expr:
            if "match" in e:
                m = e["match"]
                left = m["left"]
                name = (left.get("meta", {}).get("key") or left.get("ct", {}).get("key")
                        or left.get("payload", {}).get("field") or next(iter(left)))
                right = m["right"]
                if isinstance(right, dict):
                    right = f'{right["prefix"]["addr"]}/{right["prefix"]["len"]}'
                parts.append(f'{name} {m["op"]} {right}')
            else:
                parts.append(next(iter(e)))
        out.append(" ".join(parts))
    return out


def test_masquerade_rules():
    assert _texts("postrouting") == [
        "oifname == tether0 saddr == 127.0.0.0/8 masquerade",
        "oifname == tether0 saddr == 172.17.0.0/16 status in ['dnat'] masquerade",
        "oifname != tether0 saddr == 172.17.0.0/16 masquerade",
    ]


def test_loopback_guard():
    assert _texts("guard") == ["iifname != lo daddr == 127.0.0.0/8 drop"]


def test_forward_with_icc():
    assert _texts("forward") == [
        "state in ['established', 'related'] accept",
        "iifname == tether0 oifname != tether0 accept",
        "oifname == tether0 status in ['dnat'] accept",
        # a published container port is open at the container's own address, as in Docker
        "iifname != tether0 oifname == tether0 daddr == 172.17.0.2 dport == 80 accept",
        "iifname != tether0 oifname == tether0 daddr == 172.17.0.3 dport == 53 accept",
        "iifname == tether0 oifname == tether0 accept",
        "oifname == tether0 drop",
    ]


def test_forward_without_icc_accepts_only_linked_pairs():
    cfg = FirewallConfig("tether", "tether0", "172.17.0.0/16", icc=False,
                         accepts=(("tcp", "172.17.0.2", "172.17.0.3", 5432),))
    assert _texts("forward", cfg)[3:] == [
        "iifname == tether0 oifname == tether0 saddr == 172.17.0.2 daddr == 172.17.0.3 "
        "dport == 5432 accept",
        "oifname == tether0 drop",
    ]


def test_loopback_and_hairpin_sources_become_the_gateway_by_static_snat():
    cfg = FirewallConfig("tether", "tether0", "172.17.0.0/16", gateway="172.17.0.1")
    post = rules("postrouting", cfg)
    assert [expr[-1] for expr in post] == [{"snat": {"addr": "172.17.0.1"}},
                                           {"snat": {"addr": "172.17.0.1"}},
                                           {"masquerade": None}]
    # without a known gateway every source rewrite is a masquerade
    assert all(expr[-1] == {"masquerade": None} for expr in rules("postrouting"))
