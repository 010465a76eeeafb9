"""Namespaces shared between containers (`--network`, `--ipc`, `--pid` `container:<name>`,
`--ipc shareable`) against Docker 20.10: the same docker CLI commands on both engines, with
container IDs normalised. What a member sees is compared with what its donor sees on the same
engine (same addresses, hosts file, hostname, namespaces), and those findings across engines;
errors (conflicting flags, a missing, stopped or non-shareable donor) are compared as texts."""
from __future__ import annotations

import json
import re
import subprocess
from typing import Callable, Iterator

import pytest

from reference import started

pytestmark = pytest.mark.integration

Docker = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="module")
def engines(daemon) -> Iterator[dict[str, Docker]]:
    with started("sharedns") as ref:
        yield {"docker": ref.docker, "tether": daemon.docker}


def _clean(data: bytes) -> str:
    return re.sub(r"[0-9a-f]{64}", "<ID>", data.decode())


def _outcome(r: subprocess.CompletedProcess) -> tuple[int, str, str]:
    return r.returncode, _clean(r.stdout), _clean(r.stderr)


def _each(engines: dict[str, Docker], scenario: Callable[[Docker], object]) -> None:
    """Run the scenario on both engines (the containers it made removed after), compare."""
    seen = {}
    for name, docker in engines.items():
        before = set(docker("ps", "-aq").stdout.decode().split())
        try:
            seen[name] = scenario(docker)
        finally:
            made = set(docker("ps", "-aq").stdout.decode().split()) - before
            if made:
                docker("rm", "-f", *made)
    assert seen["tether"] == seen["docker"]


def _donor(docker: Docker, *flags: str) -> str:
    r = docker("run", "-d", "--name", "donor", *flags, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


CONFLICTS = [["--hostname", "h"], ["--dns", "192.0.2.53"], ["--add-host", "a:192.0.2.7"],
             ["-p", "8080:80"], ["-P"], ["--expose", "80"], ["--link", "donor:d"]]


def test_create_time_errors_as_docker(engines) -> None:
    def scenario(docker: Docker) -> list:
        _donor(docker)
        out = [_outcome(docker("create", "--network", "container:donor", *flags, "busybox"))
               for flags in CONFLICTS]
        out += [_outcome(docker("create", f"--{kind}", "container:nope", "busybox"))
                for kind in ("ipc", "pid")]
        out.append(_outcome(docker("create", "--network", "container:", "busybox")))
        out.append(_outcome(docker("create", "--uts", "host", "--hostname", "h", "busybox")))
        r = docker("create", "--network", "container:nope", "busybox")  # looked up at start
        out.append(r.returncode)
        out.append(_outcome(docker("start", r.stdout.decode().strip())))
        return out
    _each(engines, scenario)


def test_network_member_sees_its_donors_network(engines) -> None:
    def scenario(docker: Docker) -> dict:
        donor = _donor(docker)
        probe = "hostname; cat /etc/hosts /etc/resolv.conf; ip -o addr"
        mine = docker("exec", "donor", "sh", "-c", probe).stdout
        member = docker("run", "--rm", "--network", "container:donor", "busybox", "sh", "-c",
                        probe)
        assert member.returncode == 0, member.stderr
        r = docker("run", "-d", "--name", "member", "--network", "container:donor", "busybox",
                   "sleep", "300")
        assert r.returncode == 0, r.stderr
        shown = json.loads(docker("inspect", "member").stdout)[0]
        donor_shown = json.loads(docker("inspect", "donor").stdout)[0]
        docker("network", "create", "sharednet")
        try:
            attach = [_outcome(docker("network", "connect", "sharednet", "member")),
                      _outcome(docker("network", "disconnect", "bridge", "member"))]
        finally:
            docker("network", "rm", "sharednet")
        return {"attach": attach, "port": _outcome(docker("port", "member")),
                "ps": _outcome(docker("ps", "--filter", "name=member", "--format",
                                      "{{.Names}} {{.Networks}} {{.Ports}}")),
                "HOSTNAME": docker("exec", "member", "sh", "-c", "echo $HOSTNAME").stdout
                == f"{donor[:12]}\n".encode(),
                "same view": member.stdout == mine, "hostname": member.stdout.split()[0]
                == donor[:12].encode(),
                "NetworkSettings": shown["NetworkSettings"],
                "NetworkMode": shown["HostConfig"]["NetworkMode"] == f"container:{donor}",
                "Hostname": shown["Config"]["Hostname"] == donor[:12],
                "files": [shown[k] == donor_shown[k]
                          for k in ("HostnamePath", "HostsPath", "ResolvConfPath")]}
    _each(engines, scenario)


def test_member_when_its_donor_stops_restarts_or_goes(engines) -> None:
    def scenario(docker: Docker) -> list:
        _donor(docker)
        docker("run", "-d", "--name", "member", "--network", "container:donor", "busybox",
               "sleep", "300")
        addrs = lambda: docker("exec", "member", "ip", "-o", "-4", "addr").stdout.decode() \
            .count("inet")
        out: list = [addrs()]
        docker("stop", "-t", "1", "donor")
        out += [docker("inspect", "-f", "{{.State.Status}}", "member").stdout, addrs()]
        docker("start", "donor")
        out.append(addrs())  # still the old, empty namespace until the member restarts
        docker("restart", "-t", "1", "member")
        out.append(addrs())
        docker("rm", "-f", "donor")
        out.append(_outcome(docker("restart", "-t", "1", "member")))
        return out
    _each(engines, scenario)


def test_ipc_and_pid_joined_as_docker(engines) -> None:
    def scenario(docker: Docker) -> list:
        _donor(docker, "--ipc", "shareable")
        docker("run", "-d", "--name", "private", "busybox", "sleep", "300")
        docker("create", "--name", "stopped", "busybox")
        ns = lambda kind: docker("exec", "donor", "readlink", f"/proc/self/ns/{kind}").stdout
        docker("exec", "donor", "sh", "-c", "echo shared >/dev/shm/f")
        member = docker("run", "--rm", "--ipc", "container:donor", "--pid", "container:donor",
                        "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; readlink "
                        "/proc/self/ns/pid; ps -o pid,comm | grep -w sleep; cat /dev/shm/f; "
                        "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3,4")
        assert member.returncode == 0, member.stderr
        lines = member.stdout.decode().splitlines()
        out: list = [lines[0].encode() + b"\n" == ns("ipc"),
                     lines[1].encode() + b"\n" == ns("pid"), lines[2:]]
        for flags in (["--ipc", "container:private"], ["--ipc", "container:stopped"],
                      ["--pid", "container:stopped"], ["--network", "container:stopped"]):
            out.append(_outcome(docker("run", "--rm", *flags, "busybox", "true")))
        return out
    _each(engines, scenario)


def test_member_of_a_host_network_donor(engines) -> None:
    """Docker sets its net.* defaults only in a network namespace of the container's own: a
    member of a `--network host` donor leaves the host's values alone (and starts)."""
    def scenario(docker: Docker) -> tuple:
        _donor(docker, "--network", "host")
        return _outcome(docker("run", "--rm", "--network", "container:donor", "busybox", "sh",
                               "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start "
                               "/proc/sys/net/ipv4/ping_group_range"))
    _each(engines, scenario)
