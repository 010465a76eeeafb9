"""Host port allocation: Docker's cursor order, wildcard overlap, ranges, bind() check, errors."""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from tether.network.portalloc import (FALLBACK_EPHEMERAL, PortAllocator, PortError, can_bind,
                                      read_ephemeral_range)
from tether.rules.errors import ApiError

BOTH = ["0.0.0.0", "::"]


def always(proto: str, ip: str, port: int) -> bool:
    return True


def busy(*taken: tuple[str, int]) -> Callable[[str, str, int], bool]:
    """A bind check that says the given (ip, port) pairs are held by some other process."""
    def check(proto: str, ip: str, port: int) -> bool:
        return (ip, port) not in taken
    return check


@pytest.fixture
def alloc() -> PortAllocator:
    return PortAllocator((32768, 32771), always)


def test_read_ephemeral_range(tmp_path):
    f = tmp_path / "range"
    f.write_text("32768\t60999\n")
    assert read_ephemeral_range(str(f)) == (32768, 60999)
    f.write_text("garbage\n")
    assert read_ephemeral_range(str(f)) == FALLBACK_EPHEMERAL
    assert read_ephemeral_range(str(tmp_path / "missing")) == FALLBACK_EPHEMERAL


def test_ephemeral_cursor_order_and_no_reuse_before_wrap(alloc):
    assert [alloc.allocate("tcp", BOTH) for _ in range(2)] == [32768, 32769]
    alloc.release("tcp", BOTH, 32768)
    assert alloc.allocate("tcp", BOTH) == 32770
    assert alloc.allocate("tcp", BOTH) == 32771
    assert alloc.allocate("tcp", BOTH) == 32768  # wrapped around to the freed port
    with pytest.raises(PortError, match="^all ports are allocated$") as info:
        alloc.allocate("tcp", BOTH)
    assert info.value.status == 500 and isinstance(info.value, ApiError)


def test_protocols_are_independent(alloc):
    assert alloc.allocate("tcp", BOTH) == 32768
    assert alloc.allocate("udp", BOTH) == 32768
    assert alloc.allocate("sctp", BOTH) == 32768


def test_a_range_has_its_own_cursor(alloc):
    assert alloc.allocate("tcp", ["127.0.0.1"], 8000, 9000) == 8000
    assert alloc.allocate("tcp", ["127.0.0.1"], 8000, 9000) == 8001
    assert alloc.allocate("tcp", BOTH) == 32768
    assert alloc.allocate("tcp", BOTH, 8000, 9000) == 8002  # 8000-8001 taken on 127.0.0.1


def test_full_range(alloc):
    assert alloc.allocate("tcp", BOTH, 7000, 7001) == 7000
    assert alloc.allocate("tcp", BOTH, 7000, 7001) == 7001
    with pytest.raises(PortError, match="^all ports are allocated$"):
        alloc.allocate("tcp", BOTH, 7000, 7001)


def test_exact_port_taken_by_tether(alloc):
    assert alloc.allocate("tcp", BOTH, 6666, 6666) == 6666
    with pytest.raises(PortError) as info:
        alloc.allocate("tcp", BOTH, 6666, 6666)
    assert info.value.message == "Bind for 0.0.0.0:6666 failed: port is already allocated"
    assert alloc.allocate("udp", BOTH, 6666, 6666) == 6666


def test_ipv6_clash_is_printed_bare(alloc):
    alloc.allocate("tcp", ["::"], 6800, 6800)
    with pytest.raises(PortError, match=r"^Bind for :::6800 failed: port is already allocated$"):
        alloc.allocate("tcp", BOTH, 6800, 6800)
    # the failed request recorded nothing: 0.0.0.0:6800 is still free
    assert alloc.allocate("tcp", ["0.0.0.0"], 6800, 6800) == 6800


def test_wildcard_overlaps_specific_addresses_of_its_family_only(alloc):
    alloc.allocate("tcp", ["0.0.0.0"], 7200, 7200)
    with pytest.raises(PortError) as info:
        alloc.allocate("tcp", ["127.0.0.1"], 7200, 7200)
    assert info.value.message == ("Error starting userland proxy: listen tcp4 127.0.0.1:7200: "
                                  "bind: address already in use")
    assert alloc.allocate("tcp", ["::1"], 7200, 7200) == 7200
    alloc.allocate("udp", ["127.0.0.1"], 7300, 7300)
    with pytest.raises(PortError, match="listen udp4 0.0.0.0:7300: bind: address already in use"):
        alloc.allocate("udp", BOTH, 7300, 7300)


def test_ephemeral_skips_ports_held_on_a_specific_address(alloc):
    alloc.allocate("tcp", ["127.0.0.1"], 32768, 32768)
    assert alloc.allocate("tcp", BOTH) == 32769
    assert alloc.allocate("tcp", ["127.0.0.1"]) == 32770  # 32769 is held through 0.0.0.0


def test_release_frees_every_ip_of_the_request(alloc):
    alloc.allocate("tcp", BOTH, 6666, 6666)
    alloc.release("tcp", BOTH, 6666)
    assert alloc.allocate("tcp", ["127.0.0.1"], 6666, 6666) == 6666
    assert alloc.allocate("tcp", ["::1"], 6666, 6666) == 6666


def test_reserve_after_restart(alloc):
    alloc.reserve("tcp", BOTH, 32768)
    assert alloc.allocate("tcp", BOTH) == 32769
    with pytest.raises(PortError, match="Bind for 0.0.0.0:32768 failed"):
        alloc.reserve("tcp", ["0.0.0.0"], 32768)


def test_bind_check_skips_ports_held_by_other_processes():
    alloc = PortAllocator((32768, 32771), busy(("0.0.0.0", 32768), ("::", 8000)))
    assert alloc.allocate("tcp", BOTH) == 32769
    assert alloc.allocate("tcp", ["0.0.0.0"], 8000, 9000) == 8000
    assert alloc.allocate("tcp", BOTH, 8000, 9000) == 8001  # 8000 is busy on ::
    with pytest.raises(PortError) as info:
        alloc.allocate("tcp", BOTH, 32768, 32768)
    assert info.value.message == ("Error starting userland proxy: listen tcp4 0.0.0.0:32768: "
                                  "bind: address already in use")
    with pytest.raises(PortError, match=r"listen tcp6 \[::\]:8000: bind: address already in use"):
        alloc.allocate("tcp", ["::"], 8000, 8000)


def test_bind_check_failure_other_than_in_use_is_reported():
    def unassignable(proto: str, ip: str, port: int) -> bool:
        raise OSError(99, "Cannot assign requested address")
    alloc = PortAllocator((32768, 32771), unassignable)
    with pytest.raises(PortError) as info:
        alloc.allocate("tcp", ["10.9.9.9"], 80, 80)
    assert info.value.message == ("Error starting userland proxy: listen tcp4 10.9.9.9:80: "
                                  "bind: cannot assign requested address")


def test_requests_name_ips_in_canonical_form(alloc):
    alloc.allocate("tcp", ["[::0]"], 9000, 9000)
    with pytest.raises(PortError, match=":::9000"):
        alloc.allocate("tcp", ["::"], 9000, 9000)
    with pytest.raises(ValueError):
        alloc.allocate("tcp", [], 9000, 9000)


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP listener on 127.0.0.1 (an ephemeral port chosen by the kernel)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_can_bind_sees_a_real_listener(listener):
    assert not can_bind("tcp", "127.0.0.1", listener)
    assert not can_bind("tcp", "0.0.0.0", listener)  # the wildcard overlaps 127.0.0.1
    assert can_bind("udp", "127.0.0.1", listener)


def test_allocator_with_the_real_check_skips_a_listener(listener):
    alloc = PortAllocator((32768, 60999))
    port = alloc.allocate("tcp", ["127.0.0.1"], listener, listener + 50)
    assert listener < port <= listener + 50
    with pytest.raises(PortError, match=f"127.0.0.1:{listener}: bind: address already in use"):
        alloc.allocate("tcp", ["127.0.0.1"], listener, listener)


def test_can_bind_udp_and_a_closed_test_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not can_bind("udp", "127.0.0.1", port)
    assert can_bind("udp", "127.0.0.1", port)  # can_bind's own socket did not linger


def test_can_bind_ignores_time_wait():
    """A port whose last connection is in TIME_WAIT is free for a new listener."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end goes to TIME_WAIT
        client.recv(1)
        client.close()
    assert can_bind("tcp", "127.0.0.1", port)


def test_can_bind_sctp_real_or_absent():
    """With SCTP in the kernel a held port is busy; without it nothing can hold one."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError:
        assert can_bind("sctp", "127.0.0.1", 5000)
        return
    with sock:
        sock.bind(("127.0.0.1", 0))
        assert not can_bind("sctp", "127.0.0.1", sock.getsockname()[1])


def test_can_bind_raises_for_an_address_that_is_not_local():
    with pytest.raises(OSError):
        can_bind("tcp", "192.0.2.1", 5000)  # TEST-NET-1: never a local address here
