"""Tether's IPv6 nftables table (`ip6` family, the daemon's `--ip6tables`): the IPv6 side of
firewall.py's rules, built by firewall.py's builders for the `ip6` family from a
`Firewall6Config` and replaced whole in one transaction.

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

from dataclasses import dataclass
from typing import Any

from tether.network import firewall
from tether.network.firewall import BridgeNet, FirewallConfig, Mapping

FAMILY = "ip6"


@dataclass(frozen=True)
class Firewall6Config:
    """Every bridge of the daemon (isolation), with its IPv6 subnet and gateway or none, and the
    mappings published to containers' IPv6 addresses."""

    table: str
    bridges: tuple[BridgeNet, ...]
    mappings: tuple[Mapping, ...] = ()


def build_ruleset(cfg: Firewall6Config) -> dict[str, Any]:
    """The nft JSON document that replaces the ip6 table with exactly this configuration."""
    return firewall.document(FAMILY, cfg.table, cfg.bridges, cfg.mappings)


def apply_with(cfg: FirewallConfig, cfg6: Firewall6Config | None, remove6: bool) -> None:
    """Replace the ip table and, in the same transaction (one nft run; both or neither), the ip6
    table by `cfg6`, or delete the ip6 table of the same name when `remove6` (absent is fine: no
    network has IPv6 any more, or none may, or an earlier run's may be there). In the calling
    thread's network namespace."""
    commands = firewall.build_ruleset(cfg)["nftables"]
    if cfg6 is not None:
        commands += build_ruleset(cfg6)["nftables"]
    elif remove6:
        commands += firewall.removal(cfg.table, FAMILY)
    firewall.load({"nftables": commands})
