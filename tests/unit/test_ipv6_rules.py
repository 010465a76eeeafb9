"""IPv6's pure rules: create bodies and IPAM.Config entries with dockerd's texts (seen on
Docker 20.10 with --ipv6), the record's views, the IPv6 IPAM and the MAC-derived address of the
default bridge, the ip6 nft table, AAAA answers, the resolver's lookup and /etc/hosts lines."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest
from dnslib import QTYPE, DNSRecord

from tether.engine import endpoints
from tether.network import dns, firewall, firewall6, ipam, netrules
from tether.network.files import hosts_file
from tether.network.netrules import NetworkRecord
from tether.rules.errors import ApiError, BadRequest, Forbidden, NotFound


def record(**kw) -> NetworkRecord:
    base = dict(id="ab" * 32, name="n6", created="2026-01-01T00:00:00.000000000Z",
                subnet="172.18.0.0/16", gateway="172.18.0.1", enable_ipv6=True,
                subnet6="2001:db8:2::/64", gateway6="2001:db8:2::1",
                user_config6={"Subnet": "2001:db8:2::/64"})
    return NetworkRecord(**{**base, **kw})


def test_configs_split_by_family_and_dockers_refusals():
    v4, v6 = netrules.split_configs([{"Subnet": "10.50.0.0/24"}, {"Subnet": "2001:db8:3::/64"}],
                                    True)
    assert (v4, v6) == ({"Subnet": "10.50.0.0/24"}, {"Subnet": "2001:db8:3::/64"})
    assert netrules.split_configs([{"Subnet": "2001:db8:3::/64"}], True) == (
        {}, {"Subnet": "2001:db8:3::/64"})
    with pytest.raises(NotFound, match="non-overlapping IPv6 address pool"):
        netrules.split_configs([], True)
    with pytest.raises(NotFound, match="IPv6 address pool"):  # checked before the count
        netrules.split_configs([{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}], True)
    with pytest.raises(Forbidden, match="^bridge driver doesn't support multiple subnets$"):
        netrules.split_configs([{"Subnet": "2001:db8:d::/64"}, {"Subnet": "2001:db8:e::/64"}],
                               True)
    with pytest.raises(ApiError, match=r"^Invalid subnet 2001:db8:zz::/64 : invalid CIDR "
                                       r"address: 2001:db8:zz::/64$") as bad:
        netrules.split_configs([{"Subnet": "2001:db8:zz::/64"}], True)
    assert bad.value.status == 500
    # an IPv6 subnet without --ipv6 is accepted (and only shown)
    assert netrules.split_configs([{"Subnet": "2001:db8:9::/64"}], False)[1]


def test_parse_ipam6_gateway_and_range():
    subnet, gateway, ip_range = netrules.parse_ipam6({"Subnet": "2001:db8:10::1/64"})
    assert (str(subnet), str(gateway), ip_range) == ("2001:db8:10::/64", "2001:db8:10::1", None)
    _, gateway, ip_range = netrules.parse_ipam6({"Subnet": "2001:db8:c::/64",
                                                  "Gateway": "2001:db8:c::fe",
                                                  "IPRange": "2001:db8:c::100/120"})
    assert (str(gateway), str(ip_range)) == ("2001:db8:c::fe", "2001:db8:c::100/120")
    with pytest.raises(ApiError, match=r"^failed to allocate gateway \(2001:db8:b::1\): "
                                       "Requested address is out of range$"):
        netrules.parse_ipam6({"Subnet": "2001:db8:a::/64", "Gateway": "2001:db8:b::1"})
    with pytest.raises(ApiError, match="^invalid gateway address zz in Ipam configuration$"):
        netrules.parse_ipam6({"Subnet": "2001:db8:a::/64", "Gateway": "zz"})
    with pytest.raises(Forbidden, match="Invalid Sub-Pool"):
        netrules.parse_ipam6({"Subnet": "2001:db8:a::/64", "IPRange": "2001:db8:b::/80"})


def test_overlap_is_checked_within_a_family():
    existing = [IPv6Network("2001:db8:1::/64"), *netrules.DEFAULT_POOLS[:1]]
    with pytest.raises(Forbidden, match="Pool overlaps"):
        netrules.check_overlap(IPv6Network("2001:db8:1:0:1::/80"), existing)
    netrules.check_overlap(IPv6Network("2001:db8:2::/64"), existing)


def test_parse_create_with_ipv6():
    spec = netrules.parse_create({"Name": "n", "EnableIPv6": True, "IPAM": {"Config": [
        {"Subnet": "2001:db8:2::/64"}]}})
    assert (spec["ipv6"], spec["config"], spec["config6"]) == (
        True, {}, {"Subnet": "2001:db8:2::/64"})


def test_views_show_both_configs_and_the_ipv6_endpoint():
    r = record()
    assert r.network6 == IPv6Network("2001:db8:2::/64")
    assert not NetworkRecord.from_json(record(enable_ipv6=False).to_json()).network6
    view = netrules.inspect_view(r, {})
    assert view["EnableIPv6"] is True
    assert view["IPAM"]["Config"] == [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
                                      {"Subnet": "2001:db8:2::/64"}]
    bridge = netrules.predefined_view("bridge", "f" * 64, "t", {}, "tether0", "172.17.0.0/16",
                                      True, "2001:db8:1::/64")
    assert bridge["EnableIPv6"] and bridge["IPAM"]["Config"] == [
        {"Subnet": "172.17.0.0/16"}, {"Subnet": "2001:db8:1::/64"}]
    assert not netrules.predefined_view("host", "e" * 64, "t", {}, ipv6=True)["EnableIPv6"]
    entry = netrules.container_entry("/a", {"IPAddress": "172.18.0.2", "IPPrefixLen": 16,
                                            "GlobalIPv6Address": "2001:db8:2::2",
                                            "GlobalIPv6PrefixLen": 64})
    assert entry["IPv6Address"] == "2001:db8:2::2/64"
    # a record written before IPv6 existed reads back as an IPv4-only network
    old = {k: v for k, v in record().to_json().items() if "6" not in k}
    assert NetworkRecord.from_json(old).network6 is None


def test_ip6_requests():
    assert netrules.check_ipv6_request(record(), "2001:db8:2::99") == IPv6Address("2001:db8:2::99")
    with pytest.raises(BadRequest, match="^invalid IPv6 address: zz$"):
        netrules.check_ipv6_request(record(), "zz")
    with pytest.raises(BadRequest, match="It does not belong"):
        netrules.check_ipv6_request(record(), "2001:db8:9::5")
    with pytest.raises(BadRequest, match="user configured subnets"):
        netrules.check_ipv6_request(record(user_config6={}, subnet6=""), "2001:db8:2::5")


def test_ipv6_ipam_lowest_free_and_the_mac_derived_address():
    pool = ipam.IPAM(IPv6Network("2001:db8:2::/64"), IPv6Address("2001:db8:2::1"))
    assert [str(pool.allocate()) for _ in range(2)] == ["2001:db8:2::2", "2001:db8:2::3"]
    pool.reserve(IPv6Address("2001:db8:2::99"))
    pool.release(IPv6Address("2001:db8:2::2"))
    assert str(pool.allocate()) == "2001:db8:2::2"
    with pytest.raises(ipam.IPAMError, match="in use"):
        pool.reserve(IPv6Address("2001:db8:2::99"))
    assert str(ipam.mac_derived_ipv6(IPv6Network("2001:db8:1::/64"), "02:42:ac:11:00:02")) == \
        "2001:db8:1::242:ac11:2"
    assert ipam.mac_derived_ipv6(IPv6Network("2001:db8:1::/96"), "02:42:ac:11:00:02") is None
    small = ipam.IPAM(IPv6Network("2001:db8:3::/126"), IPv6Address("2001:db8:3::1"))
    small.allocate()
    with pytest.raises(ipam.IPAMError, match="no available IPv6 addresses"):
        small.allocate()


CFG6 = firewall6.Firewall6Config("tether", (
    firewall.BridgeNet("tether0", "2001:db8:1::/64", "2001:db8:1::1"),
    firewall.BridgeNet("br-a", "2001:db8:3::/64", "2001:db8:3::1"),
    firewall.BridgeNet("br-v4"),
    firewall.BridgeNet("br-int", "2001:db8:4::/64", "2001:db8:4::1", internal=True)),
    (firewall.Mapping("tcp", "::", 8080, "2001:db8:3::2", 80),
     firewall.Mapping("udp", "2001:db8:ff::1", 53, "2001:db8:3::3", 53)))


def _rules(chain: str) -> list[str]:
    doc = firewall6.build_ruleset(CFG6)["nftables"]
    return [str(c["add"]["rule"]["expr"]) for c in doc
            if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def test_ip6_table_is_replaced_whole_with_its_maps():
    doc = firewall6.build_ruleset(CFG6)["nftables"]
    table = {"table": {"family": "ip6", "name": "tether"}}
    assert doc[:3] == [{"add": table}, {"delete": table}, {"add": table}]
    maps = {c["add"]["map"]["name"]: c["add"]["map"].get("elem") for c in doc
            if "map" in c.get("add", {})}
    assert maps["any-ip-ipv6_addr"] == [[{"concat": ["tcp", 8080]}, "2001:db8:3::2"]]
    assert maps["one-ip-inet_service"] == [[{"concat": ["2001:db8:ff::1", "udp", 53]}, 53]]
    with pytest.raises(ValueError, match="mapped twice"):
        firewall6.build_ruleset(firewall6.Firewall6Config("t", (), (
            firewall.Mapping("tcp", "::", 1, "2001:db8:3::2", 80),
            firewall.Mapping("tcp", "::", 1, "2001:db8:3::3", 80))))


def test_loopback_is_never_dnated_and_subnets_are_masqueraded():
    for chain in ("prerouting", "output"):
        assert _rules(chain) == [str([firewall.LOCAL_DESTINATION, firewall._addr(
            "daddr", "::1", "!=", "ip6"), {"jump": {"target": "ports"}}])]
    post = "\n".join(_rules("postrouting"))
    assert "'masquerade'" in post and "2001:db8:3::" in post
    assert "br-v4" not in post
    # an internal network is never masqueraded out
    assert not any("2001:db8:4::" in r and "masquerade" in r and "!=" in r
                   for r in _rules("postrouting"))


def test_forward_isolates_every_bridge_and_drops_into_v4_only_ones():
    forward = _rules("forward")
    first_accept = next(i for i, r in enumerate(forward) if "established" in r)
    isolation = forward[:first_accept]
    assert any("'iifname'" in r and "br-a" in r and "br-v4" in r and "drop" in r
               for r in isolation)
    assert any("br-int" in r for r in isolation)
    assert str([{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "br-v4"}},
                {"drop": None}]) in forward
    # a published port is open at the container's own address, on its bridge only
    assert sum("2001:db8:3::2" in r and "'dport'" in r for r in forward) == 1


@dataclass
class Rec:
    id: str
    name: str
    networks: dict = field(default_factory=dict)


def test_lookup_gives_both_families_and_dns_answers_each_its_own():
    state = {"IPAddress": "10.50.0.3", "GlobalIPv6Address": "2001:db8:3::99"}
    world = [Rec("a" * 64, "/a1", {"n": {"Name": "nds", "State": {"IPAddress": "10.50.0.2"}}}),
             Rec("b" * 64, "/a2", {"n": {"Name": "nds", "Aliases": ["al2"], "State": state}})]
    found = endpoints.lookup(world, "a" * 64, "al2")
    assert found == [IPv4Address("10.50.0.3"), IPv6Address("2001:db8:3::99")]

    def ask(name: str, qtype: str) -> DNSRecord:
        reply = dns.answer(DNSRecord.question(name, qtype).pack(),
                           lambda n: endpoints.lookup(world, "a" * 64, n), lambda ip: None)
        assert isinstance(reply, bytes)
        return DNSRecord.parse(reply)
    aaaa = ask("al2", "AAAA")
    assert [(rr.rtype, str(rr.rdata), rr.ttl) for rr in aaaa.rr] == [
        (QTYPE.AAAA, "2001:db8:3::99", 600)]
    assert [str(rr.rdata) for rr in ask("a2", "A").rr] == ["10.50.0.3"]
    # an IPv4-only container: AAAA is an empty NOERROR, never forwarded (as Docker)
    world.append(Rec("c" * 64, "/b1", {"n": {"Name": "nds", "State": {"IPAddress": "10.50.0.4"}}}))
    empty = ask("b1", "AAAA")
    assert (empty.header.rcode, empty.rr) == (0, [])


def test_hosts_lines_for_both_families_in_docker_order():
    text = hosts_file("h", "172.17.0.2", more=["2001:db8:1::242:ac11:2", "", ""])
    assert text.splitlines()[-2:] == ["172.17.0.2\th", "2001:db8:1::242:ac11:2\th"]


def test_daemon_ipv6_flags():
    from tether.daemon import parse_args

    args = parse_args(["--ipv6", "--fixed-cidr-v6", "2001:db8:1::/64"])
    assert (args.ipv6, args.fixed_cidr_v6, args.ip6tables) == (True, "2001:db8:1::/64", True)
    assert parse_args(["--ipv6=false"]).ipv6 is False
    assert parse_args(["--ip6tables=false"]).ip6tables is False
    # shown only, as dockerd (EnableIPv6 false, the subnet in IPAM.Config, no addresses)
    assert parse_args(["--fixed-cidr-v6", "2001:db8:1::/64"]).ipv6 is False
    for bad in (["--ipv6"], ["--ipv6", "--fixed-cidr-v6", "zz"]):
        with pytest.raises(SystemExit):  # dockerd does not start either
            parse_args(bad)


def test_ip6_arpa_names_resolve_to_the_containers_name_on_the_network():
    name = IPv6Address("2001:db8:3::99").reverse_pointer + "."
    assert name.startswith("9.9.0.0.0.0.0.0.") and name.endswith(".8.b.d.0.1.0.0.2.ip6.arpa.")
    assert dns.reverse_address(name) == IPv6Address("2001:db8:3::99")
    assert dns.reverse_address("9.9.0.0.ip6.arpa") is None
    assert dns.reverse_address(name.replace("9.9.", "x.9.", 1)) is None
    state = {"IPAddress": "10.50.0.3", "GlobalIPv6Address": "2001:db8:3::99"}
    world = [Rec("a" * 64, "/a1", {"n": {"Name": "nds", "State": {"IPAddress": "10.50.0.2"}}}),
             Rec("b" * 64, "/a2", {"n": {"Name": "nds", "State": state}})]
    assert endpoints.reverse(world, "a" * 64, IPv6Address("2001:db8:3::99")) == "a2.nds"
    reply = dns.answer(DNSRecord.question(name, "PTR").pack(), lambda n: [],
                       lambda ip: endpoints.reverse(world, "a" * 64, ip))
    assert isinstance(reply, bytes)
    assert [str(rr.rdata) for rr in DNSRecord.parse(reply).rr] == ["a2.nds."]


def test_link_local_ips_without_an_interface_are_refused_not_dropped():
    for mode in ("host", "none"):
        with pytest.raises(BadRequest, match="link-local IPs"):
            netrules.check_endpoint_config(mode, False,
                                           {"IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]}})
    for mode, user in (("bridge", False), ("default", False), ("n6", True)):
        netrules.check_endpoint_config(mode, user,
                                       {"IPAMConfig": {"LinkLocalIPs": ["169.254.8.8"]}})


@pytest.mark.parametrize("given,message", [
    (["169.254.8.8", "bogus", "x"], "Invalid link-local IP address: [169.254.8.8 bogus x]"),
    (["169.254.8.8", "10.1.2.3"], "invalid link local IP address: 10.1.2.3"),
    (["::1"], "invalid link local IP address: ::1"),
])
def test_link_local_ips_checked_with_dockerd_texts(given, message):
    with pytest.raises(ApiError) as err:
        netrules.link_local_ips(given)
    assert (err.value.status, err.value.message) == (500, message)


def test_link_local_ips_of_both_families_pass():
    given = ["169.254.0.0", "169.254.255.254", "fe80::99"]
    assert netrules.link_local_ips(given) == tuple(given)
