"""ReplyCache must always say what `dns.answer` says for the same query and the same lookups:
it only skips building the message again."""
from __future__ import annotations

from ipaddress import IPv4Address

from dnslib import DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.network import dns

NAMES = ["web", "db", "cache"]
ADDRESSES = [IPv4Address(f"172.18.0.{i}") for i in range(2, 6)]


def query(name: str, qtype: str = "A", qid: int = 1) -> bytes:
    record = DNSRecord.question(name, qtype)
    record.header.id = qid
    return bytes(record.pack())


def test_a_repeated_query_gets_the_same_reply_with_its_own_id() -> None:
    cache = dns.ReplyCache()
    table = {"web": [ADDRESSES[0]]}
    first = cache.answer(query("web", qid=7), lambda n: table.get(n, []), lambda ip: None)
    again = cache.answer(query("web", qid=8), lambda n: table.get(n, []), lambda ip: None)
    assert isinstance(first, bytes) and isinstance(again, bytes)
    assert DNSRecord.parse(again).header.id == 8
    assert again[2:] == first[2:]


def test_a_changed_lookup_is_asked_every_time_and_wins() -> None:
    cache = dns.ReplyCache()
    table = {"web": [ADDRESSES[0]]}
    asked: list[str] = []

    def names(name: str) -> list[IPv4Address]:
        asked.append(name)
        return table.get(name, [])

    cache.answer(query("web"), names, lambda ip: None)
    table["web"] = [ADDRESSES[1]]
    reply = cache.answer(query("web"), names, lambda ip: None)
    assert [str(rr.rdata) for rr in DNSRecord.parse(reply).rr] == [str(ADDRESSES[1])]
    del table["web"]
    assert cache.answer(query("web"), names, lambda ip: None) == dns.Forward(query("web"))
    assert asked == ["web"] * 5  # built once; then each time checked, changed, built again


def test_several_addresses_follow_the_lookups_order_each_time() -> None:
    cache = dns.ReplyCache()
    orders = [[ADDRESSES[0], ADDRESSES[1]], [ADDRESSES[1], ADDRESSES[0]]]
    for order in orders * 2:
        reply = cache.answer(query("db"), lambda n: order, lambda ip: None)
        assert [str(rr.rdata) for rr in DNSRecord.parse(reply).rr] == [str(ip) for ip in order]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES + ["2.0.18.172.in-addr.arpa"]),
                          st.sampled_from(["A", "AAAA", "PTR"]),
                          st.integers(0, 65535),
                          st.dictionaries(st.sampled_from(NAMES),
                                          st.lists(st.sampled_from(ADDRESSES), max_size=2,
                                                   unique=True)),
                          st.sampled_from([None, "web.net"])),
                max_size=30),
       st.integers(1, 4))
def test_the_cache_always_answers_as_answer_does(steps, size: int) -> None:
    cache = dns.ReplyCache(size=size)
    for name, qtype, qid, table, ptr in steps:
        def names(n: str) -> list[IPv4Address]:
            return table.get(n, [])

        def addresses(ip: IPv4Address) -> str | None:
            return ptr
        packet = query(name, qtype, qid)
        assert cache.answer(packet, names, addresses) == dns.answer(packet, names, addresses)
