"""IPAM: Docker 20.10's subnet choice, lowest-free addresses and MACs (pure)."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.network.ipam import DEFAULT_POOLS, IPAM, IPAMError, choose_subnet, mac_address

A = IPv4Address
N = IPv4Network


def test_default_pools_are_172_17_to_31():
    assert DEFAULT_POOLS[0] == N("172.17.0.0/16")
    assert DEFAULT_POOLS[-1] == N("172.31.0.0/16")
    assert len(DEFAULT_POOLS) == 15


def test_choose_subnet_first_pool_when_free():
    in_use = [N("127.0.0.0/8"), N("10.0.2.0/24"), N("0.0.0.0/0")]
    assert choose_subnet(in_use) == (N("172.17.0.0/16"), A("172.17.0.1"))


def test_choose_subnet_skips_overlapping_pools():
    # A /24 inside 172.17/16 and a /15 covering 172.18-19: the first free pool is 172.20/16.
    in_use = [N("172.17.5.0/24"), N("172.18.0.0/15")]
    assert choose_subnet(in_use) == (N("172.20.0.0/16"), A("172.20.0.1"))


def test_choose_subnet_wider_host_route_blocks_every_pool_it_covers():
    with pytest.raises(IPAMError, match="non-overlapping IPv4 address pool"):
        choose_subnet([N("172.16.0.0/12")])


def test_choose_subnet_bip_wins_even_when_in_use():
    assert choose_subnet([N("172.17.0.0/16")], bip="172.20.0.1/16") == (
        N("172.20.0.0/16"), A("172.20.0.1"))
    assert choose_subnet([], bip="10.1.2.200/24") == (N("10.1.2.0/24"), A("10.1.2.200"))


@pytest.mark.parametrize("bip", ["172.20.0.0/16", "172.20.255.255/16", "nonsense", "1.2.3.4/33"])
def test_choose_subnet_bad_bip(bip):
    with pytest.raises(IPAMError, match="invalid --bip"):
        choose_subnet([], bip=bip)


def test_allocate_lowest_free_skipping_network_and_gateway():
    ipam = IPAM(N("172.17.0.0/16"), A("172.17.0.1"))
    assert [ipam.allocate() for _ in range(3)] == [A("172.17.0.2"), A("172.17.0.3"),
                                                   A("172.17.0.4")]


def test_release_makes_the_address_the_next_one():
    # As the reference engine does: .2 removed while .3 runs, the next container gets .2.
    ipam = IPAM(N("172.17.0.0/16"), A("172.17.0.1"))
    first, second = ipam.allocate(), ipam.allocate()
    ipam.release(first)
    assert ipam.allocate() == first
    assert ipam.allocate() == second + 1


def test_release_is_idempotent_but_rejects_gateway_and_foreign_addresses():
    ipam = IPAM(N("10.0.0.0/24"), A("10.0.0.1"))
    ipam.release(A("10.0.0.9"))  # never allocated: nothing happens
    assert ipam.allocate() == A("10.0.0.2")
    for bad in ("10.0.0.1", "10.0.0.0", "10.0.0.255", "10.0.1.2"):
        with pytest.raises(IPAMError):
            ipam.release(A(bad))
    assert ipam.allocate() == A("10.0.0.3")


def test_gateway_need_not_be_first_host():
    ipam = IPAM(N("10.0.0.0/29"), A("10.0.0.3"))
    assert [ipam.allocate() for _ in range(5)] == [A(f"10.0.0.{i}") for i in (1, 2, 4, 5, 6)]


def test_reserve_marks_in_use_and_allocation_skips_it():
    ipam = IPAM(N("172.17.0.0/16"), A("172.17.0.1"))
    ipam.reserve(A("172.17.0.2"))
    ipam.reserve(A("172.17.0.4"))
    assert ipam.allocate() == A("172.17.0.3")
    assert ipam.allocate() == A("172.17.0.5")


@pytest.mark.parametrize("bad", ["172.17.0.2", "172.17.0.1", "172.17.0.0", "172.17.255.255",
                                 "172.18.0.2"])
def test_reserve_errors(bad):
    ipam = IPAM(N("172.17.0.0/16"), A("172.17.0.1"))
    ipam.reserve(A("172.17.0.2"))
    if bad == "172.17.0.2":
        with pytest.raises(IPAMError, match="already in use"):
            ipam.reserve(A(bad))
    else:
        with pytest.raises(IPAMError, match="not a container address"):
            ipam.reserve(A(bad))


def test_exhaustion_then_release_frees_one():
    ipam = IPAM(N("10.0.0.0/29"), A("10.0.0.1"))
    got = [ipam.allocate() for _ in range(5)]  # .2 to .6; .7 is broadcast
    assert got == [A(f"10.0.0.{i}") for i in range(2, 7)]
    with pytest.raises(IPAMError, match="no available IPv4 addresses in 10.0.0.0/29"):
        ipam.allocate()
    ipam.release(A("10.0.0.4"))
    assert ipam.allocate() == A("10.0.0.4")


def test_point_to_point_subnet_has_no_network_or_broadcast_address():
    ipam = IPAM(N("10.0.0.0/31"), A("10.0.0.0"))
    assert ipam.allocate() == A("10.0.0.1")
    with pytest.raises(IPAMError):
        ipam.allocate()


def test_gateway_outside_subnet():
    with pytest.raises(IPAMError):
        IPAM(N("10.0.0.0/24"), A("10.0.1.1"))


@pytest.mark.parametrize("ip, mac", [("172.17.0.2", "02:42:ac:11:00:02"),
                                     ("172.17.0.3", "02:42:ac:11:00:03"),
                                     ("10.255.1.200", "02:42:0a:ff:01:c8")])
def test_mac_address(ip, mac):
    assert mac_address(A(ip)) == mac


@given(st.lists(st.one_of(st.just(None), st.integers(min_value=2, max_value=14)), max_size=60))
def test_allocation_matches_a_lowest_free_model(steps):
    """Any mix of allocations (None) and releases (an offset) hands out what a plain
    'lowest free host address' model does, exhaustion included."""
    subnet = N("10.0.0.0/28")  # hosts .1-.14, gateway .1
    ipam, model = IPAM(subnet, A("10.0.0.1")), {1}
    for step in steps:
        if step is None:
            free = [i for i in range(1, 15) if i not in model]
            if not free:
                with pytest.raises(IPAMError):
                    ipam.allocate()
                continue
            assert ipam.allocate() == subnet.network_address + free[0]
            model.add(free[0])
        else:
            ipam.release(subnet.network_address + step)
            model.discard(step)
