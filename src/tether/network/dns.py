"""The embedded DNS server's answers (pure): a query message in; a reply, or "forward it", out.

Docker Engine 20.10's embedded resolver (checked on the reference engine) is the profile:
- a name it knows gets its A records with TTL 600, the question's spelling echoed (names match
  case-insensitively, with or without the trailing dot); several addresses come in the lookup's
  order (the resolver shuffles them, as Docker does);
- AAAA questions get the name's IPv6 addresses on networks with IPv6 (TTL 600), an empty
  NOERROR when it has none; MX questions for a known name get an empty NOERROR: neither leaks
  to the upstream servers; other types (TXT, SRV, ANY...) are forwarded even for a known name;
- `in-addr.arpa` and `ip6.arpa` questions for a container address get a PTR to
  `name.network.`, TTL 600;
- everything else is not ours: it goes to the upstream servers (`Forward`);
- replies carry `qr`, `ra` and the query's `rd`, never `aa`, and no EDNS record (a UDP reply
  past the client's size loses answers and gets TC); a query that
  is not one QUERY-opcode question gets FORMERR or NOTIMP without question or `ra`, and replies
  sent to the server are dropped: Docker's do the same.
The wire format is dnslib's; nothing here touches a socket, so every rule has a unit test.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Callable

from dnslib import AAAA, A, PTR, QTYPE, RCODE, RR, DNSError, DNSHeader, DNSRecord
from dnslib.buffer import Buffer

from tether.network.files import DEFAULT_NAMESERVERS

TTL = 600
UDP_PAYLOAD = 512  # a plain (non-EDNS) UDP reply's limit
OPCODE_QUERY = 0
_REVERSE_SUFFIX = ".in-addr.arpa"
_REVERSE6_SUFFIX = ".ip6.arpa"
# the types a container's name answers: A with its addresses, AAAA and MX empty (so the
# question does not leak to the upstreams); any other type of any name is forwarded
_NAME_TYPES = frozenset({QTYPE.A, QTYPE.AAAA, QTYPE.MX})

NameLookup = Callable[[str], "list[IPv4Address | IPv6Address]"]
AddressLookup = Callable[["IPv4Address | IPv6Address"], "str | None"]


@dataclass(frozen=True)
class Forward:
    """A query the containers' names cannot answer: send `packet` unchanged to the upstreams."""

    packet: bytes


def parse(packet: bytes) -> DNSRecord | None:
    """The query in `packet`, or None when it is not a DNS message at all."""
    try:
        return DNSRecord.parse(packet)
    except DNSError:
        return None


def _reply(request: DNSRecord, rcode: int = RCODE.NOERROR) -> DNSRecord:
    header = DNSHeader(id=request.header.id, qr=1, rd=request.header.rd, ra=1,
                       opcode=request.header.opcode, rcode=rcode)
    return DNSRecord(header, questions=request.questions[:1])


def _refusal(header: DNSHeader, rcode: int) -> bytes:
    """FORMERR or NOTIMP as Docker's resolver (Go's miekg/dns) sends them: the query's id,
    opcode and rd, no question, no ra."""
    return bytes(DNSRecord(DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd,
                                     rcode=rcode)).pack())


def servfail(packet: bytes) -> bytes | None:
    """SERVFAIL for a query no upstream answered, with its question: resolvers such as glibc's
    ignore a reply whose question is not theirs, and would wait for their timeout instead."""
    request = parse(packet)
    return None if request is None else bytes(_reply(request, RCODE.SERVFAIL).pack())


def reverse_address(qname: str) -> IPv4Address | IPv6Address | None:
    """`4.3.2.1.in-addr.arpa` -> 1.2.3.4, the 32 nibbles of an `ip6.arpa` name -> the IPv6
    address; None for any other name (partial names included)."""
    name = qname.rstrip(".").lower()
    if name.endswith(_REVERSE6_SUFFIX):
        nibbles = name[: -len(_REVERSE6_SUFFIX)].split(".")
        if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef"
                                         for n in nibbles):
            return None
        return IPv6Address(int("".join(reversed(nibbles)), 16))
    if not name.endswith(_REVERSE_SUFFIX):
        return None
    octets = name[: -len(_REVERSE_SUFFIX)].split(".")
    if len(octets) != 4 or not all(o.isdigit() and len(o) <= 3 for o in octets):
        return None
    try:
        return IPv4Address(".".join(reversed(octets)))
    except ValueError:
        return None


def answer(packet: bytes, names: NameLookup, addresses: AddressLookup
           ) -> bytes | Forward | None:
    """The reply to one query message, `Forward` when it is for the upstreams, None to drop it.

    `names(name)` gets the lowercased name without its trailing dot and returns its addresses
    ([] when it is not a container's); `addresses(ip)` returns the `name.network` of a container
    address or None. Replies (qr set) are dropped, as Docker does: answering one could start a
    loop between two servers.
    """
    request = parse(packet)
    if request is None:
        try:
            header = DNSHeader.parse(Buffer(packet))
        except DNSError:
            return None
        return None if header.qr else _refusal(header, RCODE.FORMERR)
    if request.header.qr:
        return None
    if request.header.opcode != OPCODE_QUERY:
        return _refusal(request.header, RCODE.NOTIMP)
    if len(request.questions) != 1:
        return _refusal(request.header, RCODE.FORMERR)
    question = request.q
    qname = str(question.qname)
    if question.qtype == QTYPE.PTR:
        address = reverse_address(qname)
        target = addresses(address) if address is not None else None
        if target is None:
            return Forward(packet)
        reply = _reply(request)
        reply.add_answer(RR(question.qname, QTYPE.PTR, rdata=PTR(target.rstrip(".") + "."),
                            ttl=TTL))
        return bytes(reply.pack())
    if question.qtype not in _NAME_TYPES:
        return Forward(packet)
    found = names(qname.rstrip(".").lower())
    if not found:
        return Forward(packet)
    reply = _reply(request)
    if question.qtype in (QTYPE.A, QTYPE.AAAA):  # each its family; none: an empty NOERROR
        version, rdata = (4, A) if question.qtype == QTYPE.A else (6, AAAA)
        for ip in found:
            if ip.version == version:
                reply.add_answer(RR(question.qname, question.qtype, rdata=rdata(str(ip)),
                                    ttl=TTL))
    return bytes(reply.pack())


def fit_udp(reply: bytes, query: bytes) -> bytes:
    """A reply too long for the client's UDP buffer (512 bytes, or the size its EDNS record
    offers) loses answers from the end until it fits, and gets TC so the client can ask again
    over TCP: Docker's resolver truncates the same way."""
    if len(reply) <= UDP_PAYLOAD:
        return reply
    request = parse(query)
    offered = max((rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT), default=0) \
        if request is not None else 0
    limit = max(UDP_PAYLOAD, offered)
    if len(reply) <= limit:
        return reply
    record = DNSRecord.parse(reply)
    record.header.tc = 1
    while record.rr and len(record.pack()) > limit:
        record.rr.pop()
    return bytes(record.pack())


def upstreams(resolv_conf: str) -> list[str]:
    """The servers unknown names go to: the host's nameservers, all of them (the resolver
    forwards from the daemon's namespace, where even a loopback one answers), or Google's public
    servers when the host lists none, as Docker's containers fall back to."""
    servers = [fields[1] for fields in (line.split() for line in resolv_conf.splitlines())
               if len(fields) > 1 and fields[0] == "nameserver"]
    return servers or list(DEFAULT_NAMESERVERS)


class ReplyCache:
    """Replies already built, sent again with the new query's id while what they were built from
    still holds: building one with dnslib costs about 40 us, replaying it about 2 us.

    The key is the query after its id (flags, question, EDNS record); the entry remembers the one
    lookup its reply came from (a name's addresses or an address's name) and the result, and is
    used only when the same lookup, asked again now for this querier, returns the same result. A
    stopped container's name therefore stops resolving at once, and one cache serves every
    container: the reply depends only on the query and that result. Names with several addresses
    are not kept (their order changes on every answer), nor are forwards and errors.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[bytes, tuple[bool, object, object, bytes]] = {}

    def answer(self, packet: bytes, names: NameLookup, addresses: AddressLookup
               ) -> bytes | Forward | None:
        """What `answer(packet, names, addresses)` returns, from the cache when it can be."""
        key = packet[2:]
        entry = self._entries.get(key)
        if entry is not None:
            by_name, subject, seen, body = entry
            now = names(subject) if by_name else addresses(subject)  # type: ignore[arg-type]
            if now == seen:
                return packet[:2] + body
        asked: list[tuple[bool, object, object]] = []

        def recorded_names(name: str) -> list[IPv4Address | IPv6Address]:
            found = names(name)
            asked.append((True, name, found))
            return found

        def recorded_addresses(ip: IPv4Address | IPv6Address) -> str | None:
            found = addresses(ip)
            asked.append((False, ip, found))
            return found

        result = answer(packet, recorded_names, recorded_addresses)
        if isinstance(result, bytes) and len(asked) == 1:
            by_name, subject, found = asked[0]
            if not (by_name and len(found) > 1):  # type: ignore[arg-type]
                if len(self._entries) >= self.size:
                    self._entries.clear()
                self._entries[key] = (by_name, subject, found, result[2:])
        return result
