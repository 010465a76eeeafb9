"""Containers on user-defined networks: who resolves to what, and interface naming (pure).

A container's endpoints on user networks live in its record (`Container.networks`: network ID ->
{Name, Aliases, IPAMConfig, Links, State}); these functions read a snapshot of the records, so
the embedded resolver's answers are unit-tested without a daemon. Docker's rules: a name is known
to a querier when the named container runs on a user network the querier is on too, and it
resolves to the named container's address on that shared network. Names are the container's name,
its aliases on that network (the short ID among them) and its short ID; `--link` aliases on a
user network are known only to the container that declared them.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Iterable, Protocol


class _Record(Protocol):
    id: str
    name: str
    networks: dict


def _live(c: _Record) -> dict[str, dict]:
    """The user-network endpoints of a container that are up now: network ID -> entry."""
    return {nid: entry for nid, entry in c.networks.items()
            if (entry.get("State") or {}).get("IPAddress")}


def _names_of(c: _Record, entry: dict) -> set[str]:
    return {c.name.lstrip("/").lower(), c.id[:12],
            *(alias.lower() for alias in entry.get("Aliases") or [])}


def _link_targets(querier: _Record, entry: dict, name: str) -> list[str]:
    """The container names `name` is a link alias for in the querier's endpoint `entry`."""
    targets = []
    for link in entry.get("Links") or []:
        target, _, alias = link.partition(":")
        if (alias or target).lstrip("/").lower() == name:
            targets.append(target.lstrip("/"))
    return targets


def lookup(containers: Iterable[_Record], querier_id: str, name: str
           ) -> list[IPv4Address | IPv6Address]:
    """The addresses `name` resolves to for the container `querier_id` ([] when unknown): each
    match's IPv4 address and, on a network with IPv6, its IPv6 one (the resolver answers A
    from the first, AAAA from the second)."""
    records = list(containers)
    by_id = {c.id: c for c in records}
    querier = by_id.get(querier_id)
    if querier is None:
        return []
    wanted = name.rstrip(".").lower()
    found: list[IPv4Address | IPv6Address] = []
    for nid, entry in _live(querier).items():
        link_names = set(_link_targets(querier, entry, wanted))
        for c in records:
            theirs = _live(c).get(nid)
            if theirs is None:
                continue
            if wanted in _names_of(c, theirs) or c.name.lstrip("/") in link_names:
                state = theirs["State"]
                addresses = [IPv4Address(state["IPAddress"])]
                if state.get("GlobalIPv6Address"):
                    addresses.append(IPv6Address(state["GlobalIPv6Address"]))
                found += [address for address in addresses if address not in found]
    return found


def reverse(containers: Iterable[_Record], querier_id: str,
            address: IPv4Address | IPv6Address) -> str | None:
    """The PTR name of an address on a network the querier is on: `<name>.<network>`."""
    records = list(containers)
    querier = next((c for c in records if c.id == querier_id), None)
    if querier is None:
        return None
    for nid, entry in _live(querier).items():
        for c in records:
            theirs = _live(c).get(nid)
            if theirs and str(address) in (theirs["State"]["IPAddress"],
                                           theirs["State"].get("GlobalIPv6Address")):
                return f"{c.name.lstrip('/')}.{entry.get('Name', '')}"
    return None


def next_ifindex(counter: int, live: Iterable[str]) -> int:
    """The N of the next ethN in a container's namespace: as libnetwork counts, never reusing a
    number within one run (connect, disconnect, connect again gives eth2), and past every live
    interface (the counter of a run that began under an earlier daemon may be behind)."""
    numbers = [int(name[3:]) for name in live if name.startswith("eth") and name[3:].isdigit()]
    return max([counter, *(n + 1 for n in numbers)])


def gateway_endpoint(candidates: Iterable[tuple[str, bool, dict]]) -> dict | None:
    """Which endpoint gives a container on several networks its default route: libnetwork's
    order, non-internal networks first, then by network name (so joining `bridge` takes the
    route from `n1`). Candidates are (network name, internal, endpoint state)."""
    ordered = sorted(candidates, key=lambda c: (c[1], c[0]))
    return ordered[0][2] if ordered else None


def merge_aliases(given: Iterable[str], short_id: str) -> list[str]:
    """EndpointSettings.Aliases on a user network: the given ones, then the short ID (Docker
    adds it when the endpoint is made)."""
    out = list(dict.fromkeys(a for a in given if a))
    return out if short_id in out else [*out, short_id]
