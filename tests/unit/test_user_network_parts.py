"""The user-network parts of shared modules: firewall isolation and internal networks, IPAM with
an ip range, the embedded resolver's resolv.conf, hosts lines per network, the run flags and the
`network create` IPAM flags."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from tether.cli.client import CliError
from tether.cli.commands_network import ipam_config, network_contexts
from tether.cli.runopts import RunOptions, create_body
from tether.network.files import embedded_resolv_conf, hosts_file
from tether.network.firewall import BridgeNet, FirewallConfig, Mapping, build_ruleset
from tether.network.ipam import IPAM, IPAMError
from tether.network.manager import host_ifname

CFG = FirewallConfig("tether", "tether0", "172.17.0.0/16", gateway="172.17.0.1",
                     mappings=(Mapping("tcp", "0.0.0.0", 8080, "172.18.0.2", 80),),
                     networks=(BridgeNet("br-one", "172.18.0.0/16", "172.18.0.1"),
                               BridgeNet("br-int", "172.19.0.0/16", "172.19.0.1",
                                         internal=True)))


def chain(name: str, cfg: FirewallConfig = CFG) -> list[list[dict]]:
    return [c["add"]["rule"]["expr"] for c in build_ruleset(cfg)["nftables"]
            if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == name]


def meta(expr: list[dict], key: str) -> list[tuple[str, object]]:
    return [(e["match"]["op"], e["match"]["right"]) for e in expr
            if "match" in e and e["match"]["left"].get("meta", {}).get("key") == key]


def test_isolation_comes_first_and_covers_every_pair_of_bridges():
    forward = chain("forward")
    first = forward[:4]
    assert meta(first[0], "iifname") == [("==", "tether0")]
    assert meta(first[0], "oifname") == [("==", {"set": ["br-one", "br-int"]})]
    assert meta(first[1], "oifname") == [("==", {"set": ["tether0", "br-int"]})]
    # the internal bridge: nothing out, nothing in from elsewhere
    assert meta(first[2], "iifname") == [("==", "br-int")] and \
        meta(first[2], "oifname") == [("!=", "br-int")]
    assert meta(first[3], "oifname") == [("==", "br-int")] and \
        meta(first[3], "iifname") == [("!=", "br-int")]
    assert all(expr[-1] == {"drop": None} for expr in first)
    assert forward[4][-1] == {"accept": None} and "ct" in forward[4][0]["match"]["left"]


def test_the_internal_bridge_neither_goes_out_nor_masquerades():
    forward = chain("forward")
    outbound = [expr for expr in forward if meta(expr, "iifname") == [("==", "br-int")]
                and meta(expr, "oifname") == [("!=", "br-int")] and expr[-1] == {"accept": None}]
    assert outbound == []
    post = chain("postrouting")
    masquerades = [meta(expr, "oifname") for expr in post if expr[-1] == {"masquerade": None}]
    assert masquerades == [[("!=", "tether0")], [("!=", "br-one")]]


def test_published_ports_open_on_the_bridge_of_their_container():
    forward = chain("forward")
    opened = [expr for expr in forward if any(
        "payload" in e.get("match", {}).get("left", {}) and
        e["match"]["left"]["payload"].get("field") == "dport" for e in expr)]
    assert len(opened) == 1 and meta(opened[0], "oifname") == [("==", "br-one")]


def test_no_user_network_means_no_isolation_rules():
    plain = FirewallConfig("tether", "tether0", "172.17.0.0/16")
    assert "ct" in chain("forward", plain)[0][0]["match"]["left"]


def test_ipam_range_hands_out_its_first_address_and_static_ones_anywhere():
    pool = IPAM(IPv4Network("10.9.0.0/24"), IPv4Address("10.9.0.254"),
                IPv4Network("10.9.0.128/25"))
    assert pool.allocate() == IPv4Address("10.9.0.128")
    pool.reserve(IPv4Address("10.9.0.5"))
    with pytest.raises(IPAMError, match="already in use"):
        pool.reserve(IPv4Address("10.9.0.5"))
    assert pool.allocate() == IPv4Address("10.9.0.129")
    pool.release(IPv4Address("10.9.0.5"))
    assert pool.allocate() == IPv4Address("10.9.0.130")  # never below the range
    small = IPAM(IPv4Network("10.9.1.0/24"), IPv4Address("10.9.1.1"), IPv4Network("10.9.1.2/31"))
    assert [small.allocate(), small.allocate()] == [IPv4Address("10.9.1.2"),
                                                    IPv4Address("10.9.1.3")]
    with pytest.raises(IPAMError, match="no available"):
        small.allocate()


def test_embedded_resolv_conf():
    assert embedded_resolv_conf("nameserver 10.0.0.1\n") == \
        "nameserver 127.0.0.11\noptions ndots:0\n"
    host = "search a.example b.example\nnameserver 1.1.1.1\noptions rotate\n"
    assert embedded_resolv_conf(host) == ("search a.example b.example\nnameserver 127.0.0.11\n"
                                          "options rotate ndots:0\n")
    assert embedded_resolv_conf(host, ["c.example"], ["ndots:2"]) == \
        "search c.example\nnameserver 127.0.0.11\noptions ndots:2\n"


def test_hosts_has_a_line_per_network_address():
    text = hosts_file("abc", "172.17.0.2", more=["172.18.0.3", ""])
    assert text.splitlines()[-2:] == ["172.17.0.2\tabc", "172.18.0.3\tabc"]
    assert hosts_file("abc", None, more=["172.18.0.3"]).splitlines()[-1] == "172.18.0.3\tabc"


def test_host_interface_names_fit_and_differ():
    cid = "0123456789abcdef" * 4
    names = {host_ifname(cid, f"eth{i}") for i in range(12)}
    assert len(names) == 12 and all(len(n) < 16 for n in names)
    assert host_ifname(cid) == "veth0123456789a"


def test_run_flags_fill_the_endpoint_config():
    body = create_body(RunOptions(image="busybox", network="n1", network_aliases=["web"],
                                  ip="10.0.0.5", links=["db:d"]), environ={})
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"n1": {
        "IPAMConfig": {"IPv4Address": "10.0.0.5"}, "Links": ["db:d"], "Aliases": ["web"]}}}
    assert body["HostConfig"]["NetworkMode"] == "n1"
    plain = create_body(RunOptions(image="busybox", links=["db"]), environ={})
    assert plain["NetworkingConfig"] == {"EndpointsConfig": {"default": {}}}
    with pytest.raises(CliError, match="network-scoped aliases are only supported"):
        create_body(RunOptions(image="busybox", network_aliases=["x"]), environ={})


def test_network_create_ipam_flags():
    assert ipam_config(("10.0.0.0/24", "10.1.0.0/24"), ("10.1.0.9",), ("10.0.0.128/25",)) == [
        {"Subnet": "10.0.0.0/24", "IPRange": "10.0.0.128/25"},
        {"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.9"}]
    with pytest.raises(CliError, match="^every ip-range or gateway must have a corresponding "
                                       "subnet$"):
        ipam_config((), ("10.0.0.1",), ())
    with pytest.raises(CliError, match="^no matching subnet for gateway 10.30.0.1$"):
        ipam_config(("10.20.0.0/24",), ("10.30.0.1",), ())
    with pytest.raises(CliError, match="cannot configure multiple gateways"):
        ipam_config(("10.20.0.0/24",), ("10.20.0.1", "10.20.0.2"), ())


def test_network_ls_rows_are_sorted_by_name():
    items = [{"Id": "b" * 64, "Name": "zz", "Driver": "bridge", "Scope": "local"},
             {"Id": "a" * 64, "Name": "bridge", "Driver": "bridge", "Scope": "local",
              "Labels": {"x": "1", "a": "2"}}]
    rows = network_contexts(items, trunc=True)
    assert [(r["ID"], r["Name"]) for r in rows] == [("a" * 12, "bridge"), ("b" * 12, "zz")]
    assert rows[0]["Labels"] == "a=2,x=1" and rows[0]["Internal"] == "false"


def test_removing_the_own_lines_of_a_container():
    from tether.network.files import remove_hosts_alias
    text = hosts_file("abc", "172.17.0.2", more=["172.18.0.3"]) + "172.18.0.9\tabcd\n"
    assert remove_hosts_alias(text, "abc").splitlines()[-1] == "172.18.0.9\tabcd"
    assert "\tabc\n" not in remove_hosts_alias(text, "abc")
