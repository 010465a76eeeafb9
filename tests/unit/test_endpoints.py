"""Who resolves to what on user-defined networks (the embedded resolver's lookups)."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from tether.engine import endpoints

N1, N2 = "1" * 64, "2" * 64


@dataclass
class Rec:
    id: str
    name: str
    networks: dict = field(default_factory=dict)


def on(nid: str, name: str, ip: str | None, aliases=(), links=()) -> dict:
    return {nid: {"Name": name, "Aliases": list(aliases) or None, "Links": list(links) or None,
                  "State": {"IPAddress": ip} if ip else {"NetworkID": nid}}}


def world() -> list[Rec]:
    web = Rec("a" * 64, "/web", {**on(N1, "n1", "172.18.0.2", ["www", "a" * 12]),
                                 **on(N2, "n2", "172.19.0.2")})
    db = Rec("b" * 64, "/db", on(N1, "n1", "172.18.0.3", ["database"], ["cache:kv"]))
    cache = Rec("c" * 64, "/cache", on(N1, "n1", "172.18.0.4"))
    other = Rec("d" * 64, "/other", on(N2, "n2", "172.19.0.3"))
    stopped = Rec("e" * 64, "/stopped", on(N1, "n1", None, ["old"]))
    return [web, db, cache, other, stopped]


def test_names_aliases_and_short_ids_on_shared_networks():
    w = world()
    db = "b" * 64
    assert endpoints.lookup(w, db, "web") == [IPv4Address("172.18.0.2")]
    assert endpoints.lookup(w, db, "WWW.") == [IPv4Address("172.18.0.2")]
    assert endpoints.lookup(w, db, "a" * 12) == [IPv4Address("172.18.0.2")]
    assert endpoints.lookup(w, db, "c" * 12) == [IPv4Address("172.18.0.4")]  # short ID, always
    # not on a shared network, stopped, unknown: nothing
    assert endpoints.lookup(w, db, "other") == []
    assert endpoints.lookup(w, db, "old") == [] and endpoints.lookup(w, db, "stopped") == []
    assert endpoints.lookup(w, db, "nope") == [] and endpoints.lookup(w, "x", "web") == []


def test_the_address_is_the_one_on_the_shared_network():
    w = world()
    assert endpoints.lookup(w, "d" * 64, "web") == [IPv4Address("172.19.0.2")]
    assert endpoints.lookup(w, "a" * 64, "other") == [IPv4Address("172.19.0.3")]


def test_link_aliases_are_known_to_the_declaring_container_only():
    w = world()
    assert endpoints.lookup(w, "b" * 64, "kv") == [IPv4Address("172.18.0.4")]
    assert endpoints.lookup(w, "a" * 64, "kv") == []


def test_reverse_names_container_dot_network():
    w = world()
    assert endpoints.reverse(w, "b" * 64, IPv4Address("172.18.0.2")) == "web.n1"
    assert endpoints.reverse(w, "b" * 64, IPv4Address("172.19.0.3")) is None


def test_interface_numbers_are_never_reused_within_a_run():
    assert endpoints.next_ifindex(0, []) == 0
    assert endpoints.next_ifindex(3, ["eth1"]) == 3  # eth0, eth2 came and went
    assert endpoints.next_ifindex(0, ["eth0", "eth4"]) == 5  # a run begun by another daemon


def test_the_gateway_is_the_first_non_internal_network_by_name():
    a, b, c = {"Ifname": "eth0"}, {"Ifname": "eth1"}, {"Ifname": "eth2"}
    assert endpoints.gateway_endpoint([("n1", False, a), ("bridge", False, b)]) is b
    assert endpoints.gateway_endpoint([("aa", True, a), ("zz", False, c)]) is c
    assert endpoints.gateway_endpoint([]) is None


def test_aliases():
    assert endpoints.merge_aliases(["web", "", "web"], "abc") == ["web", "abc"]
    assert endpoints.merge_aliases(["abc", "x"], "abc") == ["abc", "x"]
