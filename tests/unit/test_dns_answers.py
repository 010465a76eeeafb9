"""The embedded DNS answers, against what Docker 20.10's resolver sends (seen on the reference
engine): A with TTL 600, empty NOERROR for other types of a known name, PTR to name.network,
everything else forwarded."""
from __future__ import annotations

from ipaddress import IPv4Address

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.network import dns

KNOWN = {"web": [IPv4Address("172.18.0.2")],
         "db": [IPv4Address("172.18.0.3"), IPv4Address("172.18.0.4")]}
PTRS = {IPv4Address("172.18.0.2"): "web.appnet"}


def names(name: str) -> list[IPv4Address]:
    return KNOWN.get(name, [])


def addresses(ip: IPv4Address) -> str | None:
    return PTRS.get(ip)


def ask(name: str, qtype: str = "A", **header: int) -> bytes | dns.Forward | None:
    query = DNSRecord.question(name, qtype)
    for key, value in header.items():
        setattr(query.header, key, value)
    return dns.answer(query.pack(), names, addresses)


def reply(result: bytes | dns.Forward | None) -> DNSRecord:
    assert isinstance(result, bytes), result
    return DNSRecord.parse(result)


def test_known_name_gets_its_address_with_dockers_ttl_and_flags() -> None:
    r = reply(ask("web"))
    assert r.header.rcode == RCODE.NOERROR
    assert (r.header.qr, r.header.rd, r.header.ra, r.header.aa) == (1, 1, 1, 0)
    assert [(str(rr.rname), rr.rtype, str(rr.rdata), rr.ttl) for rr in r.rr] == [
        ("web.", QTYPE.A, "172.18.0.2", 600)]


def test_reply_keeps_the_query_id_and_its_rd_bit() -> None:
    query = DNSRecord.question("web")
    query.header.id = 4321
    query.header.rd = 0
    r = reply(dns.answer(query.pack(), names, addresses))
    assert (r.header.id, r.header.rd) == (4321, 0)


def test_names_match_whatever_their_case_and_the_question_is_echoed() -> None:
    r = reply(ask("WeB."))
    assert [(str(rr.rname), str(rr.rdata)) for rr in r.rr] == [("WeB.", "172.18.0.2")]


def test_every_address_of_a_name_is_answered_in_the_lookups_order() -> None:
    r = reply(ask("db"))
    assert [str(rr.rdata) for rr in r.rr] == ["172.18.0.3", "172.18.0.4"]


def test_aaaa_and_mx_of_a_known_name_are_empty_noerror() -> None:
    for qtype in ("AAAA", "MX"):
        r = reply(ask("web", qtype))
        assert (r.header.rcode, r.rr) == (RCODE.NOERROR, []), qtype


def test_other_types_are_forwarded_even_for_a_known_name() -> None:
    for qtype in ("TXT", "SRV", "CNAME", "NS", "SOA", "ANY"):
        assert isinstance(ask("web", qtype), dns.Forward), qtype


def test_unknown_names_are_forwarded_unchanged() -> None:
    query = DNSRecord.question("example.com", "AAAA").pack()
    assert dns.answer(query, names, addresses) == dns.Forward(query)


def test_container_address_gets_a_ptr_to_name_dot_network() -> None:
    r = reply(ask("2.0.18.172.in-addr.arpa", "PTR"))
    assert [(str(rr.rname), rr.rtype, str(rr.rdata), rr.ttl) for rr in r.rr] == [
        ("2.0.18.172.in-addr.arpa.", QTYPE.PTR, "web.appnet.", 600)]


def test_other_reverse_names_are_forwarded() -> None:
    for name in ("9.9.18.172.in-addr.arpa", "0.18.172.in-addr.arpa",
                 "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"):
        assert isinstance(ask(name, "PTR"), dns.Forward), name


def test_reverse_address_reads_only_whole_ipv4_names() -> None:
    assert dns.reverse_address("4.3.2.1.in-addr.arpa.") == IPv4Address("1.2.3.4")
    assert dns.reverse_address("4.3.2.1.IN-ADDR.ARPA") == IPv4Address("1.2.3.4")
    for name in ("3.2.1.in-addr.arpa", "a.3.2.1.in-addr.arpa", "256.3.2.1.in-addr.arpa",
                 "4.3.2.1.example", "1234.3.2.1.in-addr.arpa"):
        assert dns.reverse_address(name) is None, name


def bare(result: bytes | dns.Forward | None) -> tuple:
    r = reply(result)
    return r.header.id, r.header.rcode, r.header.opcode, r.header.qr, r.header.rd, r.header.ra, \
        r.questions


def test_garbage_with_a_header_gets_a_bare_formerr_as_dockers() -> None:
    query = DNSRecord.question("web")
    broken = query.pack()[:14]  # the header and the first bytes of a name
    assert bare(dns.answer(broken, names, addresses)) == (query.header.id, RCODE.FORMERR, 0,
                                                          1, 1, 0, [])


def test_too_short_for_a_header_or_a_reply_is_dropped() -> None:
    assert dns.answer(b"\x01\x02\x03", names, addresses) is None
    sent_reply = reply(ask("web"))
    assert dns.answer(sent_reply.pack(), names, addresses) is None
    assert dns.answer(sent_reply.pack()[:14], names, addresses) is None


def test_a_query_without_exactly_one_question_is_a_bare_formerr() -> None:
    query = DNSRecord.question("web")
    query.add_question(DNSRecord.question("db").q)
    assert bare(dns.answer(query.pack(), names, addresses)) == (query.header.id, RCODE.FORMERR,
                                                                0, 1, 1, 0, [])


def test_other_opcodes_get_a_bare_notimp() -> None:
    query = DNSRecord.question("web")
    query.header.opcode = 2
    assert bare(dns.answer(query.pack(), names, addresses)) == (query.header.id, RCODE.NOTIMP,
                                                                2, 1, 1, 0, [])


def test_servfail_for_a_forward_nobody_answered_keeps_the_question() -> None:
    query = DNSRecord.question("example.com")
    r = reply(dns.servfail(query.pack()))
    assert (r.header.id, r.header.rcode, r.header.ra, str(r.q.qname)) == (
        query.header.id, RCODE.SERVFAIL, 1, "example.com.")
    assert dns.servfail(b"\x00\x01") is None


def test_long_udp_replies_lose_answers_from_the_end_and_get_tc() -> None:
    many = [IPv4Address(f"10.0.{i // 250}.{i % 250 + 1}") for i in range(60)]
    query = DNSRecord.question("big").pack()
    full = dns.answer(query, lambda name: many, addresses)
    assert isinstance(full, bytes) and len(full) > dns.UDP_PAYLOAD
    cut = dns.fit_udp(full, query)
    kept = DNSRecord.parse(cut)
    assert len(cut) <= dns.UDP_PAYLOAD < len(cut) + 16  # one more A record would not fit
    assert (kept.header.tc, str(kept.q.qname)) == (1, "big.")
    assert [str(rr.rdata) for rr in kept.rr] == [str(ip) for ip in many[:len(kept.rr)]]
    short = reply(ask("web")).pack()
    assert dns.fit_udp(short, query) == short


def test_an_edns_buffer_size_lets_a_longer_reply_through() -> None:
    many = [IPv4Address(f"10.0.0.{i}") for i in range(1, 61)]
    query = DNSRecord.question("big")
    query.add_ar(EDNS0(udp_len=4096))
    full = dns.answer(query.pack(), lambda name: many, addresses)
    assert dns.fit_udp(full, query.pack()) == full
    query.ar[0].rclass = 600
    kept = DNSRecord.parse(dns.fit_udp(full, query.pack()))
    assert kept.header.tc == 1 and 0 < len(kept.rr) < 60


def test_upstreams_are_the_hosts_nameservers_or_googles() -> None:
    text = "# comment\nnameserver 127.0.0.53\nsearch lan\nnameserver 10.0.0.1\noptions ndots:2\n"
    assert dns.upstreams(text) == ["127.0.0.53", "10.0.0.1"]
    assert dns.upstreams("search lan\n") == ["8.8.8.8", "8.8.4.4"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_get_a_reply_a_forward_or_nothing_never_an_exception(packet: bytes) -> None:
    result = dns.answer(packet, names, addresses)
    if isinstance(result, bytes):
        DNSRecord.parse(result)
