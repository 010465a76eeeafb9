"""User-defined network rules: pools, overlap, lookup by reference, views, filters, create bodies."""
from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from tether.network import netrules
from tether.network.netrules import NetworkRecord
from tether.rules.errors import ApiError, BadRequest, Forbidden, NotFound


def record(**kw) -> NetworkRecord:
    base = dict(id="ab" * 32, name="n1", created="2026-01-01T00:00:00.000000000Z",
                subnet="172.18.0.0/16", gateway="172.18.0.1")
    return NetworkRecord(**{**base, **kw})


def test_default_pools_follow_the_default_bridge_then_192_168_in_20s():
    pools = netrules.DEFAULT_POOLS
    assert pools[0] == IPv4Network("172.17.0.0/16") and pools[14] == IPv4Network("172.31.0.0/16")
    assert pools[15] == IPv4Network("192.168.0.0/20")
    assert pools[-1] == IPv4Network("192.168.240.0/20") and len(pools) == 31


def test_choose_pool_skips_whatever_overlaps():
    taken = [IPv4Network("172.17.0.0/16"), IPv4Network("172.18.5.0/24"),
             IPv4Network("0.0.0.0/0")]  # a default route claims nothing
    assert netrules.choose_pool(taken) == IPv4Network("172.19.0.0/16")
    everything = [IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/17")]
    assert netrules.choose_pool(everything) == IPv4Network("192.168.128.0/20")
    with pytest.raises(ApiError, match="non-overlapping IPv4 address pool"):
        netrules.choose_pool([IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")])


def test_overlapping_subnets_are_refused_with_dockers_words():
    with pytest.raises(Forbidden, match="^Pool overlaps with other one on this address space$"):
        netrules.check_overlap(IPv4Network("172.18.5.0/24"), [IPv4Network("172.18.0.0/16")])
    netrules.check_overlap(IPv4Network("172.19.0.0/24"), [IPv4Network("172.18.0.0/16")])


def test_parse_ipam_checks_gateway_and_range():
    subnet, gateway, ip_range = netrules.parse_ipam(
        {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254", "IPRange": "10.9.0.128/25"})
    assert (str(subnet), str(gateway), str(ip_range)) == ("10.9.0.0/24", "10.9.0.254",
                                                          "10.9.0.128/25")
    with pytest.raises(Forbidden, match="does not belong"):
        netrules.parse_ipam({"Subnet": "10.9.0.0/24", "Gateway": "10.8.0.1"})
    with pytest.raises(Forbidden, match="Invalid Sub-Pool"):
        netrules.parse_ipam({"Subnet": "10.9.0.0/24", "IPRange": "10.9.1.0/25"})
    with pytest.raises(BadRequest):
        netrules.parse_ipam({"Subnet": "10.9.0.1/33"})


def test_find_by_id_then_name_then_unique_prefix():
    a, b = record(id="ab" + "0" * 62, name="cd"), record(id="cd" + "1" * 62, name="x")
    assert netrules.find([a, b], "cd") is a  # an exact name wins over an ID prefix
    assert netrules.find([a, b], "cd1") is b
    assert netrules.find([a, b], b.id) is b
    with pytest.raises(NotFound, match="^network nope not found$"):
        netrules.find([a, b], "nope")
    c = record(id="ab" + "2" * 62, name="y")
    with pytest.raises(NotFound, match="ambiguous"):
        netrules.find([a, c], "ab")


def test_record_bridge_name_icc_and_ipam_config():
    r = record()
    assert r.bridge == "br-abababababab" and r.icc
    assert r.ipam_config() == {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}
    named = record(options={netrules.BRIDGE_NAME_OPTION: "mybr", netrules.ICC_OPTION: "false"},
                   user_config={"Subnet": "10.0.0.0/24"})
    assert named.bridge == "mybr" and not named.icc
    assert named.ipam_config() == {"Subnet": "10.0.0.0/24"}  # as given: no Gateway shown
    assert NetworkRecord.from_json(named.to_json()) == named


def test_views_and_filters():
    view = netrules.inspect_view(record(labels={"a": "b"}), {})
    assert view["IPAM"] == {"Driver": "default", "Options": {},
                            "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}
    bridge = netrules.predefined_view("bridge", "f" * 64, "t", {}, "tether0", "172.17.0.0/16")
    none = netrules.predefined_view("none", "e" * 64, "t", {})
    assert bridge["Options"]["com.docker.network.bridge.name"] == "tether0"
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16"}]
    assert (none["Driver"], none["IPAM"]["Config"], none["IPAM"]["Options"]) == ("null", [], None)
    match = netrules.matches_filters
    assert match(view, {"name": ["n"], "label": ["a=b"], "driver": ["bridge"]})
    assert not match(view, {"label": ["a=c"]}) and not match(none, {"driver": ["bridge"]})
    assert match(view, {"type": ["custom"]}) and match(none, {"type": ["builtin"]})
    assert match(view, {"dangling": ["true"]}) and not match(bridge, {"dangling": ["true"]})
    assert match(view, {"id": ["abab"]})
    # name and id are regular expressions (dockerd's filters.Match), dangling reads 1/0 too
    assert match(bridge, {"name": ["^b.i"]}) and not match(none, {"name": ["^b.i"]})
    assert match(view, {"dangling": ["1"]}) and match(bridge, {"dangling": ["0"]})
    # a network with endpoints is in use, as later Docker judges it (20.10 called it dangling)
    used = {**view, "Containers": {"c" * 64: {"Name": "web"}}}
    assert not match(used, {"dangling": ["true"]}) and match(used, {"dangling": ["false"]})


@pytest.mark.parametrize("filters, status, text", [
    ({"colour": ["x"]}, 400, "Invalid filter 'colour'"),
    ({"dangling": ["TRUE"]}, 400,
     'invalid value for filter \'dangling\', must be "true" (or "1"), or "false" (or "0")'),
    ({"dangling": ["true", "false"]}, 400, 'got more than one value for filter key "dangling"'),
    ({"type": ["custom", "bogus"]}, 500, "invalid filter: 'type'='bogus'"),
])
def test_list_filters_refused_as_dockerd(filters, status, text) -> None:
    with pytest.raises(ApiError) as caught:
        netrules.check_list_filters(filters)
    assert (caught.value.status, caught.value.message) == (status, text)


def test_list_filters_accepted() -> None:
    netrules.check_list_filters({key: ["1"] if key == "dangling" else ["custom"]
                                 for key in netrules.LIST_FILTERS})


def test_container_entry():
    entry = netrules.container_entry("/web", {"EndpointID": "e", "MacAddress": "m",
                                              "IPAddress": "172.18.0.2", "IPPrefixLen": 16})
    assert entry == {"Name": "web", "EndpointID": "e", "MacAddress": "m",
                     "IPv4Address": "172.18.0.2/16", "IPv6Address": ""}


def test_parse_create():
    spec = netrules.parse_create({"Name": "n", "Internal": True, "Labels": {"a": "b"},
                                  "Options": {netrules.MTU_OPTION: 1400},
                                  "IPAM": {"Config": [{"Subnet": "10.0.0.0/24"}]}})
    assert spec["config"] == {"Subnet": "10.0.0.0/24"} and spec["internal"]
    assert spec["options"] == {netrules.MTU_OPTION: "1400"}
    with pytest.raises(NotFound, match='plugin "foo" not found'):
        netrules.parse_create({"Name": "n", "Driver": "foo"})
    with pytest.raises(BadRequest):
        netrules.parse_create({"Name": "", "Driver": "bridge"})
    with pytest.raises(BadRequest, match="invalid mtu"):
        netrules.parse_create({"Name": "n", "Options": {netrules.MTU_OPTION: "x"}})


def test_endpoint_config_checks_for_builtin_networks():
    netrules.check_endpoint_config("n1", True, {"Aliases": ["a"]})
    with pytest.raises(BadRequest, match="network-scoped aliases"):
        netrules.check_endpoint_config("bridge", False, {"Aliases": ["a"]})
    with pytest.raises(BadRequest, match="user specified IP address"):
        netrules.check_endpoint_config("bridge", False, {"IPAMConfig": {"IPv4Address": "1.2.3.4"}})
