"""Differential tests of published ports: the docker CLI against tetherd and against Docker 20.10.

Every `-p` form of the seed, ranges on both sides, bad specs and taken ports: `docker port`,
`docker ps` PORTS and inspect's Ports must read the same. Normalised: IDs, container addresses,
and ephemeral host ports (Docker 20.10 hands them to a container's ports in the reverse order
of later versions, which tether follows, so only their presence is compared).
"""
from __future__ import annotations

import re

import pytest

from reference import run_both, side_by_side

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engines(daemon):
    with side_by_side("portsengine", daemon.docker) as engines:
        yield engines


def normalise(text: bytes) -> str:
    out = text.decode(errors="replace")
    out = re.sub(r"[0-9a-f]{64}", "<ID>", out)
    out = re.sub(r"\b[0-9a-f]{12}\b", "<SHORT>", out)
    out = re.sub(r"172\.17\.\d+\.\d+", "<IP>", out)
    return re.sub(r"\b(3[2-9]\d{3}|[4-5]\d{4}|60\d{3})\b", "<EPH>", out)


def both(engines, *args: str, input: bytes | None = None) -> tuple[tuple, tuple]:
    return run_both(engines, normalise, *args, input=input)


def reports(engines, name: str) -> None:
    for args in (["port", name], ["port", name, "5000"], ["port", name, "5000/udp"],
                 ["ps", "--filter", f"name=^{name}$", "--format", "{{.Ports}}"],
                 ["inspect", "-f", "{{json .NetworkSettings.Ports}}", name],
                 ["inspect", "-f", "{{json .HostConfig.PortBindings}}", name],
                 ["inspect", "-f", "{{json .Config.ExposedPorts}}", name]):
        docker, tether = both(engines, *args)
        assert tether == docker, args


SEED_FORMS = [
    ["-P"],
    ["-p", "6666:5000"],
    ["-p", "8000-9000:5000"],
    ["-p", "127.0.0.1:8000-9000:5000"],
    ["-p", "127.0.0.1::5000"],
    ["-p", "127.0.0.1:80:5000/udp"],
    ["-p", "7000-7002:5000-5002"],
    ["-p", "5000-5002"],
    ["-p", "6667:5000", "-p", "6668:5000", "--expose", "7100"],
    ["-P", "--expose", "5000-5001/udp"],
]


@pytest.mark.parametrize("index", range(len(SEED_FORMS)), ids=[" ".join(f) for f in SEED_FORMS])
def test_publish_forms(engines, index):
    form, name = SEED_FORMS[index], f"form{index}"
    for engine in engines.values():
        r = engine("run", "-d", "--name", name, *form, "--expose", "5000", "busybox", "sleep",
                   "300")
        assert r.returncode == 0, r.stderr
    try:
        reports(engines, name)
        for engine in engines.values():
            engine("stop", "-t", "0", name)
        reports(engines, name)
    finally:
        for engine in engines.values():
            engine("rm", "-f", name)


@pytest.mark.parametrize("spec", ["5000:", ":5000", "1.2.3.4:80", "0:0:0:0:80", "80/icmp",
                                  "70000:80", "8000-8001:80-82", "[::1:80:80", "a:b",
                                  "published=80,target=x", "127.0.0.1:-1:80"])
def test_bad_specs(engines, spec):
    docker, tether = both(engines, "create", "-p", spec, "busybox")
    assert tether == docker


def test_taken_port(engines):
    for engine in engines.values():
        assert engine("run", "-d", "--name", "holder", "-p", "6690:5000", "busybox", "sleep",
                      "300").returncode == 0
    try:
        docker, tether = both(engines, "run", "-d", "--name", "taker", "-p", "6690:5000",
                              "busybox", "sleep", "300")
        assert tether == docker
        docker, tether = both(engines, "ps", "-a", "--filter", "name=taker",
                              "--format", "{{.Names}} {{.Status}} [{{.Ports}}]")
        assert tether == docker
    finally:
        for engine in engines.values():
            engine("rm", "-f", "holder", "taker")


def test_failed_start_keeps_the_last_exit_code(engines):
    """A start that cannot publish its port: State.Error says why, ExitCode stays the last
    run's (128 only when that was 0), as dockerd's containerStart leaves it."""
    for engine in engines.values():
        assert engine("run", "--name", "exit3", "-p", "6691:5000", "busybox", "sh", "-c",
                      "exit 3").returncode == 3
        assert engine("run", "-d", "--name", "holder3", "-p", "6691:5000", "busybox", "sleep",
                      "300").returncode == 0
    try:
        docker, tether = both(engines, "start", "exit3")
        assert docker[0] != 0 and tether == docker
        docker, tether = both(engines, "inspect", "-f",
                              "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "exit3")
        assert tether == docker and docker[1].startswith("exited 3 driver failed programming")
    finally:
        for engine in engines.values():
            engine("rm", "-f", "exit3", "holder3")


@pytest.mark.parametrize("args", [
    ["--network", "none", "busybox", "sh", "-c", "cat /etc/hosts; ip -o link | wc -l"],
    ["-h", "myhost", "--add-host", "a.b:1.2.3.4", "--dns", "9.9.9.9", "busybox", "sh", "-c",
     "cat /etc/hosts /etc/resolv.conf /etc/hostname"],
    ["--network", "host", "busybox", "sh", "-c", "hostname; cat /etc/hosts"],
    ["busybox", "sh", "-c", "cat /etc/resolv.conf; ip route"],
])
def test_network_files(engines, args):
    docker, tether = both(engines, "run", "--rm", *args)
    assert tether == docker
