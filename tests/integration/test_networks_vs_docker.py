"""User-defined networks through the stock docker CLI, against tetherd and against Docker 20.10
(the reference engine): `network ls/inspect/create/rm/prune` (and the filters of ls and prune)
outputs and errors, connect and disconnect (interfaces, routes, /etc/hosts, resolv.conf), `--ip`,
`--ip-range`, aliases in inspect, isolation between networks and the default bridge, and
`--internal`.

The transcript is stateful, so it runs once per engine (module fixture) and each step is compared
on its own after normalisation: 64- and 12-hex IDs become `<idN>` by order of appearance,
creation times `<time>`, interface indices `N:` / `@ifN`.
"""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from typing import Callable, Iterator
from urllib.parse import quote

import pytest

from conftest import running_daemon
from reference import started

pytestmark = pytest.mark.integration

PING = "ping -c1 -W1 {} >/dev/null && echo reached || echo unreachable"
STEPS: list[tuple[str, ...]] = [
    ("network", "ls"),
    ("network", "create", "n1"),
    ("network", "create", "n1"),
    ("network", "create", "--subnet", "172.18.5.0/24", "n2"),
    ("network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.254", "--ip-range",
     "10.9.0.128/25", "--label", "a=b", "--opt", "com.docker.network.bridge.enable_icc=false",
     "n3"),
    ("network", "create", "--internal", "n4"),
    ("network", "create", "--gateway", "10.1.1.1", "n5"),
    ("network", "create", "--subnet", "10.20.0.0/24", "--gateway", "10.30.0.1", "n5"),
    ("network", "create", "-d", "foo", "n7"),
    ("network", "inspect", "n1", "n3", "n4", "host", "none"),
    ("network", "ls"),
    ("network", "ls", "-q"),
    ("network", "ls", "--no-trunc"),
    ("network", "ls", "-f", "driver=null"),
    ("network", "ls", "-f", "name=n", "--format", "{{.Name}}\t{{.Driver}}\t{{.Internal}}"),
    # list filters: every key dockerd knows applied, any other refused
    ("network", "ls", "-f", "bogus=1"),
    ("network", "ls", "-f", "dangling=true", "--format", "{{.Name}}"),
    ("network", "ls", "-f", "dangling=0", "--format", "{{.Name}}"),
    ("network", "ls", "-f", "dangling=yes"),
    ("network", "ls", "-f", "dangling=true", "-f", "dangling=false"),
    ("network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"),
    ("network", "ls", "-f", "type=custom", "-f", "label=a=b", "--format", "{{.Name}}"),
    ("network", "ls", "-f", "type=bogus"),
    ("network", "ls", "-f", "name=^n[13]$", "-f", "scope=local", "--format", "{{.Name}}"),
    ("network", "rm", "nope"),
    ("network", "rm", "bridge"),
    ("network", "inspect", "nope"),
    ("run", "-d", "--name", "a1", "--network", "n1", "--network-alias", "web", "busybox",
     "sleep", "300"),
    ("run", "-d", "--name", "a2", "--network", "n1", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "b1", "busybox", "sleep", "300"),
    ("run", "-d", "--name", "c1", "--network", "n3", "busybox", "sleep", "300"),
    # the list has endpoints only before API 1.28 (dangling with networks in use: see
    # test_dangling_follows_endpoints, Docker 20.10 judged it without them)
    ("api", "/v1.27/networks?filters=" + quote('{"driver":["bridge"]}')),
    ("api", "/v1.41/networks?filters=" + quote('{"driver":["bridge"]}')),
    ("inspect", "-f", "{{json .NetworkSettings.Networks}}", "a1"),
    ("inspect", "-f", "{{.HostConfig.NetworkMode}} {{.NetworkSettings.IPAddress}}", "a1"),
    ("exec", "a1", "cat", "/etc/hosts", "/etc/resolv.conf"),
    ("exec", "a1", "ip", "route"),
    ("network", "connect", "--alias", "x", "n1", "b1"),
    ("network", "connect", "n1", "b1"),
    ("exec", "b1", "ip", "-4", "addr"),
    ("exec", "b1", "ip", "route"),
    ("exec", "b1", "cat", "/etc/hosts", "/etc/resolv.conf"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks.n1}}", "b1"),
    ("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}} "
     "{{.MacAddress}}\n{{end}}", "n1"),
    # isolation: the same network talks, different networks and the default bridge do not
    ("exec", "a1", "sh", "-c", PING.format("172.18.0.3")),
    ("exec", "a1", "sh", "-c", PING.format("10.9.0.128")),
    ("exec", "c1", "sh", "-c", PING.format("172.18.0.2")),
    ("exec", "a1", "sh", "-c", PING.format("172.17.0.2")),
    ("exec", "b1", "sh", "-c", PING.format("172.18.0.2")),
    ("exec", "b1", "sh", "-c", PING.format("10.9.0.128")),
    # enable_icc=false: not even containers of the same network talk
    ("run", "-d", "--name", "c2", "--network", "n3", "busybox", "sleep", "300"),
    ("exec", "c2", "sh", "-c", PING.format("10.9.0.128")),
    ("network", "rm", "n1"),
    ("network", "disconnect", "n3", "b1"),
    ("network", "connect", "host", "b1"),
    ("network", "connect", "nope", "b1"),
    ("network", "connect", "n1", "nope"),
    ("exec", "b1", "ip", "route"),
    ("network", "disconnect", "bridge", "b1"),
    ("exec", "b1", "ip", "route"),
    ("network", "connect", "bridge", "b1"),
    ("exec", "b1", "ip", "route"),
    ("network", "disconnect", "n1", "b1"),
    ("exec", "b1", "ip", "-4", "addr"),
    ("exec", "b1", "cat", "/etc/hosts"),
    ("network", "disconnect", "bridge", "b1"),
    ("exec", "b1", "ip", "-4", "addr"),
    ("network", "disconnect", "bridge", "b1"),
    ("network", "connect", "bridge", "b1"),
    ("exec", "b1", "ip", "-4", "addr"),
    ("network", "connect", "bridge", "b1"),
    ("network", "connect", "bridge", "a2"),
    ("exec", "a2", "ip", "-4", "addr"),
    ("exec", "a2", "ip", "route"),
    ("inspect", "-f", "{{.NetworkSettings.IPAddress}} {{range $k, $v := "
     ".NetworkSettings.Networks}}{{$k}} {{end}}", "a2"),
    ("ps", "-f", "network=bridge", "--format", "{{.Names}}"),
    ("run", "--rm", "--ip", "10.0.0.5", "busybox", "true"),
    ("run", "--rm", "--network-alias", "foo", "busybox", "true"),
    ("run", "--rm", "--network", "n3", "--ip", "10.9.0.5", "busybox", "ip", "-4", "addr",
     "show", "eth0"),
    ("run", "--rm", "--network", "n3", "busybox", "ip", "-4", "addr", "show", "eth0"),
    ("run", "--rm", "--network", "n4", "busybox", "ip", "route"),
    ("run", "--rm", "--network", "n4", "busybox", "sh", "-c", PING.format("172.18.0.2")),
    # links on a user network: a name for the embedded resolver only, no env vars, no hosts line
    ("run", "-d", "--name", "l1", "--network", "n1", "--link", "a1:dbalias", "busybox", "sleep",
     "300"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks.n1.Links}} {{json .HostConfig.Links}}",
     "l1"),
    ("exec", "l1", "sh", "-c", "env | grep -ci dbalias; grep -c dbalias /etc/hosts"),
    ("exec", "l1", "sh", "-c", PING.format("dbalias")),
    ("exec", "a2", "sh", "-c", PING.format("dbalias")),
    ("exec", "a2", "sh", "-c", PING.format("web")),
    ("stop", "-t", "0", "a2"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks}} {{.NetworkSettings.IPAddress}}", "a2"),
    ("start", "a2"),
    ("exec", "a2", "ip", "route"),
    ("inspect", "-f", "{{json .NetworkSettings.Networks}}", "a2"),
    ("rm", "-f", "a1", "a2", "b1", "c1", "c2", "l1"),
    ("network", "inspect", "-f", "{{json .Containers}}", "n1"),
    ("network", "rm", "n1", "n3"),
    # prune's filters: every key applied or refused, never dropped
    ("network", "create", "--label", "keep=1", "p1"),
    ("network", "prune", "-f", "--filter", "foo=1"),
    ("network", "prune", "-f", "--filter", "until=bogus"),
    ("network", "prune", "-f", "--filter", "until=2000-01-01T00:00:00Z"),
    ("network", "prune", "-f", "--filter", "until=1h"),
    ("network", "prune", "-f", "--filter", "label=nope"),
    ("network", "prune", "-f", "--filter", "label!=keep=1"),
    ("network", "ls", "--format", "{{.Name}}"),
    ("network", "prune", "-f"),
    ("network", "ls"),
]


def normalise(text: str, ids: dict[str, str]) -> str:
    def rename(m: re.Match) -> str:
        value = m.group(0)
        for full, name in ids.items():
            if full.startswith(value) or value.startswith(full):
                return name
        ids[value] = f"<id{len(ids) + 1}>"
        return ids[value]
    text = re.sub(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b", rename, text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "<time>", text)
    text = re.sub(r"(?m)^\d+: (\w+)@if\d+", r"N: \1@ifN", text)
    return text


def api_listing(host: str, path: str) -> subprocess.CompletedProcess:
    """A `GET` of the API (an `("api", path)` step): each listed network's name and how many
    endpoints the list shows for it, sorted (the list's order is the engine's own)."""
    r = subprocess.run(["curl", "-sS", "--unix-socket", host.removeprefix("unix://"),
                        f"http://engine{path}"], capture_output=True, timeout=30)
    if r.returncode == 0:
        listed = sorted(f"{n['Name']} {len(n['Containers'])}" for n in json.loads(r.stdout))
        r.stdout = "".join(line + "\n" for line in listed).encode()
    return r


def transcript(docker: Callable[..., object], host: str) -> list[tuple[int, str, str]]:
    ids: dict[str, str] = {}
    results = []
    for step in STEPS:
        r = api_listing(host, step[1]) if step[0] == "api" else docker(*step)
        stdout = r.stdout.decode()
        if "{{range .Containers}}" in step[-2]:  # a map: Go ranges over it by (random) ID
            stdout = "".join(sorted(stdout.splitlines(keepends=True)))
        results.append((r.returncode, normalise(stdout, ids), normalise(r.stderr.decode(), ids)))
    return results


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[list, list]]:
    with started("i7anet") as ref:
        theirs = transcript(ref.docker, ref.host)
    with running_daemon() as d:
        ours = transcript(d.docker, d.host)
    yield theirs, ours


@pytest.mark.parametrize("index", range(len(STEPS)), ids=[" ".join(s)[:60] for s in STEPS])
def test_step(both, index):
    theirs, ours = both
    assert ours[index] == theirs[index]


def test_dangling_follows_endpoints(daemon) -> None:
    """A user-defined network with a container is in use, as later Docker judges it (moby
    f0d10ae); Docker 20.10 called every user-defined network dangling, so this is tether's own
    check, not a comparison."""
    name = f"dg{uuid.uuid4().hex[:8]}"
    try:
        assert daemon.docker("network", "create", f"{name}-used").returncode == 0
        assert daemon.docker("network", "create", f"{name}-idle").returncode == 0
        assert daemon.docker("run", "-d", "--name", name, "--network", f"{name}-used", "busybox",
                             "sleep", "60").returncode == 0
        listed = {}
        for value in ("true", "false"):
            r = daemon.docker("network", "ls", "-f", f"dangling={value}", "-f", f"name={name}",
                              "--format", "{{.Name}}")
            listed[value] = r.stdout.decode().split()
        assert listed == {"true": [f"{name}-idle"], "false": [f"{name}-used"]}
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("network", "rm", f"{name}-used", f"{name}-idle")
