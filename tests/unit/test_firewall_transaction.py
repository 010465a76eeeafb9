"""A rewrite with IPv6 on is one nft transaction: the ip table and the ip6 table are replaced
together (both or neither), or the ip6 table is deleted in the same run."""
from __future__ import annotations

from typing import Any

import pytest

from tether.network import firewall, firewall6
from tether.network.firewall import BridgeNet, FirewallConfig
from tether.network.firewall6 import Firewall6Config

CFG = FirewallConfig("tether", "tether0", "172.17.0.0/16")
CFG6 = Firewall6Config("tether", (BridgeNet("tether0", "2001:db8:1::/64", "2001:db8:1::1"),))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(firewall, "load", runs.append)
    return runs


def _tables(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(verb, body["table"]["family"], body["table"]["name"])
            for command in doc["nftables"] for verb, body in command.items() if "table" in body]


def test_both_tables_in_one_run(loads: list[dict[str, Any]]) -> None:
    firewall6.apply_with(CFG, CFG6, remove6=False)
    assert len(loads) == 1
    tables = _tables(loads[0])
    assert ("add", "ip", "tether") in tables and ("add", "ip6", "tether") in tables
    assert ("delete", "ip", "tether") in tables and ("delete", "ip6", "tether") in tables
    families = {c["add"]["rule"]["family"] for c in loads[0]["nftables"] if "rule" in c.get("add", {})}
    assert families == {"ip", "ip6"}, "both tables' rules are in the same run"


def test_removal_of_the_ip6_table_rides_along(loads: list[dict[str, Any]]) -> None:
    firewall6.apply_with(CFG, None, remove6=True)
    assert len(loads) == 1
    assert loads[0]["nftables"][-2:] == firewall.removal("tether", "ip6")


def test_ipv4_alone(loads: list[dict[str, Any]]) -> None:
    firewall6.apply_with(CFG, None, remove6=False)
    assert len(loads) == 1
    assert {family for _, family, _ in _tables(loads[0])} == {"ip"}
