"""IPv6 networks through the stock docker CLI, against tetherd and against Docker 20.10, both
started with `--ipv6 --fixed-cidr-v6 2001:db8:1::/64`: network create/inspect shapes and errors
(dual stack, IPv6-only subnet, `--ipv6` without an IPv6 subnet, overlaps, bad subnets and
gateways), `--ip6` and `--link-local-ip`, the IPv6 fields of container and network inspect, the
interface, routes, sysctls and /etc/hosts inside, ping6 between containers, AAAA answers of the
embedded DNS (and the empty answer for an IPv4-only container), PTR of an IPv6 address, isolation between networks, and
a published port reached over `[::1]` and over the network's gateway address from the engine's
own network namespace.

Only documentation prefixes (2001:db8::/32) are used, and all traffic stays inside the engines'
namespaces. The transcript runs once per engine; each step is compared on its own after
normalisation (IDs, times, interface indices), as test_networks_vs_docker.py does.
"""
from __future__ import annotations

import subprocess
from typing import Callable, Iterator

import pytest

from conftest import running_daemon
from reference import started
from test_networks_vs_docker import normalise

pytestmark = pytest.mark.integration

FLAGS = ("--ipv6", "--fixed-cidr-v6", "2001:db8:1::/64")
# Docker 20.10 programs IPv6 rules only with its experimental --ip6tables; tether's ip6 table is
# on by default (as in later Docker), so the reference runs with it: isolation compares
REF_FLAGS = (*FLAGS, "--experimental", "--ip6tables")
PING6 = "ping -6 -c1 -W2 {} >/dev/null && echo reached || echo unreachable"
SERVER = "while true; do nc -l -p 80 -e echo hello-v6; done"
HOST = "host"  # a step run in the engine's network namespace, not through the CLI
STEPS: list[tuple[str, ...]] = [
    ("network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "bridge"),
    ("network", "create", "--ipv6", "--subnet", "10.50.0.0/24", "--subnet", "2001:db8:3::/64",
     "nds"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:2::/64", "n6only"),
    ("network", "create", "--subnet", "2001:db8:9::/64", "noflag"),
    ("network", "create", "v4only"),
    # refusals last: Docker 20.10 leaks the IPv4 pool it took for a create that then fails
    # (the next network skips it until a restart); tether, as later Docker, does not
    ("network", "create", "--ipv6", "n6none"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:3:0:1::/80", "overlap"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:1::/64", "overlapbridge"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:zz::/64", "bad"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:a::/64", "--gateway", "2001:db8:b::1",
     "badgw"),
    ("network", "create", "--ipv6", "--subnet", "2001:db8:d::/64", "--subnet", "2001:db8:e::/64",
     "two"),
    ("network", "inspect", "nds", "n6only", "noflag"),
    ("network", "ls", "--format", "{{.Name}} {{.IPv6}}"),
    ("run", "-d", "--name", "a1", "--network", "nds", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "a2", "--network", "nds", "--ip6", "2001:db8:3::99",
     "--network-alias", "al2", "busybox", "sleep", "300"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks}}", "a1", "a2"),
    ("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}|{{.NetworkSettings.IPv6Gateway}}|"
     "{{.NetworkSettings.LinkLocalIPv6Address}}", "a1"),
    ("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}} "
     "{{.IPv6Address}}\n{{end}}", "nds"),
    ("exec", "a1", "ip", "-6", "addr", "show", "eth0", "scope", "global"),
    ("exec", "a1", "ip", "-6", "route", "show", "default"),
    ("exec", "a1", "cat", "/etc/hosts"),
    ("exec", "a2", "cat", "/etc/hosts"),
    ("exec", "a1", "sysctl", "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6",
     "net.ipv6.conf.eth0.disable_ipv6", "net.ipv6.conf.lo.disable_ipv6"),
    ("exec", "a1", "sh", "-c", PING6.format("a2")),
    ("exec", "a1", "sh", "-c", PING6.format("al2")),
    ("exec", "a1", "sh", "-c", PING6.format("2001:db8:3::1")),
    ("exec", "a1", "nslookup", "-type=aaaa", "a2"),
    ("exec", "a1", "nslookup", "-type=aaaa", "al2"),
    ("exec", "a1", "nslookup", "-type=a", "a2"),
    ("exec", "a1", "nslookup", "2001:db8:3::99"),
    # an IPv4-only network on the same daemon: IPv6 stays off, AAAA is an empty answer
    ("run", "-d", "--name", "b1", "--network", "v4only", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "b2", "--network", "v4only", "busybox", "sleep", "300"),
    ("exec", "b1", "sysctl", "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"),
    ("exec", "b1", "nslookup", "-type=aaaa", "b2"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks.v4only.GlobalIPv6Address}}", "b1"),
    # the default bridge with --fixed-cidr-v6: the address carries the MAC
    ("run", "-d", "--name", "d1", "busybox", "sleep", "300"),
    ("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings."
     "GlobalIPv6PrefixLen}} via {{.NetworkSettings.IPv6Gateway}}", "d1"),
    ("exec", "d1", "cat", "/etc/hosts"),
    ("exec", "d1", "ip", "-6", "route", "show", "default"),
    # a running container joins an IPv6 network with --ip6, and leaves it
    ("network", "connect", "--ip6", "2001:db8:3::77", "nds", "d1"),
    ("exec", "d1", "ip", "-6", "addr", "show", "eth1", "scope", "global"),
    ("exec", "d1", "ip", "-6", "route", "show", "default"),
    ("exec", "d1", "cat", "/etc/hosts"),
    ("exec", "a1", "sh", "-c", PING6.format("2001:db8:3::77")),
    ("exec", "a1", "nslookup", "-type=aaaa", "d1"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks.nds}}", "d1"),
    ("network", "disconnect", "nds", "d1"),
    ("exec", "d1", "ip", "-6", "route", "show", "default"),
    ("exec", "a1", "sh", "-c", PING6.format("2001:db8:3::77")),
    # isolation: another network's IPv6 address is out of reach, also from the default bridge
    ("run", "-d", "--name", "c1", "--network", "n6only", "busybox", "sleep", "300"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks.n6only.GlobalIPv6Address}}", "c1"),
    ("exec", "a1", "sh", "-c", PING6.format("2001:db8:2::2")),
    ("exec", "d1", "sh", "-c", PING6.format("2001:db8:3::2")),
    ("exec", "c1", "sh", "-c", PING6.format("2001:db8:2::1")),
    # --ip6 and --link-local-ip
    ("run", "--rm", "--network", "nds", "--ip6", "2001:db8:9::5", "busybox", "true"),
    ("run", "--rm", "--network", "nds", "--ip6", "2001:db8:3::99", "busybox", "true"),
    ("run", "--rm", "--network", "v4only", "--ip6", "2001:db8:9::5", "busybox", "true"),
    ("run", "--rm", "--network", "nds", "--ip6", "zz", "busybox", "true"),
    ("run", "--rm", "--network", "nds", "--link-local-ip", "fe80::99", "--link-local-ip",
     "169.254.9.9", "busybox", "sh", "-c",
     "ip addr show eth0 | grep -o -e 'inet6 fe80::99/64' -e 'inet 169.254.9.9/16'"),
    # a published port: [::1] and the gateway's IPv6 address, from the engine's namespace
    ("run", "-d", "--name", "p1", "--network", "nds", "-p", "8080:80", "busybox", "sh", "-c",
     SERVER),
    ("port", "p1"),
    (HOST, "::1"),
    (HOST, "2001:db8:3::1"),
    ("rm", "-f", "a1", "a2", "b1", "b2", "c1", "d1", "p1"),
    ("network", "rm", "nds", "n6only", "noflag", "v4only"),
]


def reach(in_netns: Callable[..., object], address: str) -> str:
    """What the published port answers at [address]:8080, asked from the engine's namespace;
    asked again while the container's server is still starting."""
    for _ in range(50):
        r = in_netns("busybox", "nc", "-w", "2", address, "8080")
        if r.stdout:  # type: ignore[attr-defined]
            return r.stdout.decode()  # type: ignore[attr-defined]
        in_netns("sleep", "0.2")
    return "no answer"


def transcript(docker: Callable[..., object], in_netns: Callable[..., object]
               ) -> list[tuple[int, str, str]]:
    ids: dict[str, str] = {}
    results = []
    for step in STEPS:
        if step[0] == HOST:
            results.append((0, reach(in_netns, step[1]), ""))
            continue
        r = docker(*step)
        stdout = r.stdout.decode()  # type: ignore[attr-defined]
        if "{{range .Containers}}" in step[-2]:  # a map: Go ranges over it by (random) ID
            stdout = "".join(sorted(stdout.splitlines(keepends=True)))
        results.append((r.returncode, normalise(stdout, ids),  # type: ignore[attr-defined]
                        normalise(r.stderr.decode(), ids)))  # type: ignore[attr-defined]
    return results


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[list, list]]:
    with started("ipv6net", REF_FLAGS) as ref:
        theirs = transcript(ref.docker, ref.in_netns)
    with running_daemon(*FLAGS) as d:
        def in_netns(*argv: str) -> object:
            return subprocess.run(["nsenter", f"--net=/run/netns/{d.netns}", *argv],
                                  capture_output=True, timeout=30)
        ours = transcript(d.docker, in_netns)
    yield theirs, ours


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[" ".join(s)[:60] for s in STEPS])
def test_step(both, index):
    theirs, ours = both
    assert ours[index] == theirs[index]


SHOWN_ONLY = [
    ("network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "bridge"),
    ("run", "--rm", "busybox", "sh", "-c", "sysctl net.ipv6.conf.eth0.disable_ipv6; "
     "ip -6 addr show eth0 scope global"),
]


def test_fixed_cidr_v6_without_ipv6_is_shown_and_not_applied():
    """dockerd takes --fixed-cidr-v6 without --ipv6: inspect shows the subnet, containers get
    no IPv6. Both engines, the same commands."""
    flags = ("--fixed-cidr-v6", "2001:db8:1::/64")
    with started("ipv6shown", flags) as ref:
        theirs = [ref.docker(*step) for step in SHOWN_ONLY]
    with running_daemon(*flags) as d:
        ours = [d.docker(*step) for step in SHOWN_ONLY]
    for step, a, b in zip(SHOWN_ONLY, theirs, ours):
        assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr), step
