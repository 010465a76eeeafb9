"""Port reporting and the -p/-P/--expose grammar, tether's CLI against the docker CLI, both talking
to ONE reference Docker 20.10 engine: the create bodies must be the same (inspected back from the
engine), and so must `port`, `ps` PORTS and the errors. The recorded tables of the unit tests are
replayed through the real docker CLI too, so they cannot drift from Docker."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from reference import ReferenceEngine, started

pytestmark = pytest.mark.integration

NAME = "portsdiff"
TETHER = str(Path(sys.executable).parent / "tether")
USAGE_HINT = "\n\nRun 'docker create --help' for more information\n"
BODY = ("{{json .HostConfig.PortBindings}} {{json .Config.ExposedPorts}} "
        "{{.HostConfig.PublishAllPorts}}")


def _unit_tables() -> Any:
    path = Path(__file__).resolve().parents[1] / "unit" / "test_portspec.py"
    spec = importlib.util.spec_from_file_location("recorded_port_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = _unit_tables()

# the seed's forms, ranges on both sides, -P with exposed ports, several -p at once
RUNNING = {
    "all": "-P --expose 80 --expose 53/udp",
    "fixed": "-p 6666:5000",
    "range": "-p 8000-9000:5000",
    "lorange": "-p 127.0.0.1:8500-9000:5000",  # 20.10 cannot share 8000 with "range"
    "loeph": "-p 127.0.0.1::5000",
    "loudp": "-p 127.0.0.1:80:5000/udp",
    "pairs": "-p 7000-7002:7000-7002 -p 7000-7001:7000-7001/udp",
    "mixed": "-p 8080:80 -p 127.0.0.1::443 -p 53:53/udp -p [::1]:9000:9000 --expose 7100-7101 -P",
    "groups": "--expose 80 --expose 81 --expose 90 --expose 80/udp -p 443:443 -p 2019 -p 8443:8443",
    "exposed": "--expose 5000",
}


@pytest.fixture(scope="module")
def ref() -> Iterator[ReferenceEngine]:
    with started(NAME) as engine:
        for name, args in RUNNING.items():
            engine.docker("run", "-d", "--name", name, *args.split(), "busybox", "sleep", "600",
                          check=True)
        engine.docker("create", "--name", "created", "-p", "5000", "busybox", check=True)
        yield engine


def tether(engine: ReferenceEngine, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TETHER, "-H", engine.host, *args], capture_output=True, timeout=60)


def normalise(proc: subprocess.CompletedProcess) -> tuple[int, str, str]:
    def clean(data: bytes) -> str:
        return re.sub(r"[0-9a-f]{64}", "<ID>", data.decode().replace("tether", "docker"))
    return proc.returncode, clean(proc.stdout), clean(proc.stderr)


def both(engine: ReferenceEngine, *args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return normalise(engine.docker(*args)), normalise(tether(engine, *args))


def created_body(engine: ReferenceEngine, proc: subprocess.CompletedProcess) -> str:
    """What the engine stored from a successful create (and the container removed again)."""
    if proc.returncode:
        return ""
    cid = proc.stdout.decode().strip()
    try:
        return engine.docker("inspect", "-f", BODY, cid, check=True).stdout.decode()
    finally:
        engine.docker("rm", cid)


@pytest.mark.parametrize("args", [
    "-p 80", "-p 8080:80 -p 8080:80/udp", "-p 127.0.0.1:8000-9000:5000", "-p 127.0.0.1::5000",
    "-p 127.0.0.1:80:5000/udp", "-p 8000-8002:80-82", "-p [::1]:80:80 -p ::1::81",
    "-p published=8080,target=80,protocol=UDP", "-P --expose 7000-7002/udp --expose 80",
    "-p 80 -p 80 -p 127.0.0.1:1:80", "--expose 90/FOO -p 90", "-p 0:80",
    "-p 80/foo", "-p 1.2.3.4:80", "-p x::", "-p [::1]:80", "-p 1-2:80-82", "-p 65536",
    "-p published=8080", "-p target=80,,published=1", "--expose 1:2", "--expose 80-x",
    "-p 80 --expose x", "-p 8000-9000:5000-5001",
])
def test_create_same_body_or_error(ref: ReferenceEngine, args: str) -> None:
    argv = ["create", *args.split(), "busybox"]
    docker, ours = ref.docker(*argv), tether(ref, *argv)
    assert (ours.returncode, ours.stderr.decode().replace("tether", "docker")) == \
        (docker.returncode, docker.stderr.decode())
    assert created_body(ref, ours) == created_body(ref, docker)


@pytest.mark.parametrize("name", sorted(RUNNING) + ["created"])
@pytest.mark.parametrize("arg", ["", "5000", "5000/udp", "5000/UDP", "80", "80/", "53/udp", "81",
                                 "x", "99999", "/tcp"])
def test_port_same_output(ref: ReferenceEngine, name: str, arg: str) -> None:
    docker, ours = both(ref, "port", name, *([arg] if arg else []))
    assert ours == docker


@pytest.mark.parametrize("args", ["port", "port all 80 81", "port nosuch", "port nosuch 80"])
def test_port_usage_and_missing_container(ref: ReferenceEngine, args: str) -> None:
    docker, ours = both(ref, *args.split())
    assert ours == docker and docker[0] == 1


def test_ps_ports_column(ref: ReferenceEngine) -> None:
    for fmt in ("{{.Names}}: {{.Ports}}", "table {{.Names}}\t{{.Ports}}"):
        docker, ours = both(ref, "ps", "-a", "--format", fmt)
        assert ours == docker
    text = ref.docker("ps", "-a", "--format", "{{.Names}}: {{.Ports}}").stdout.decode()
    # docker CLI 28's grouping: a closed group is written at once, open ones at the end
    assert ("groups: 80-81/tcp, 0.0.0.0:443->443/tcp, [::]:443->443/tcp, 90/tcp, 80/udp, "
            "0.0.0.0:8443->8443/tcp, [::]:8443->8443/tcp, 0.0.0.0:<EPH>->2019/tcp, "
            "[::]:<EPH>->2019/tcp") in re.sub(r"\b3\d{4}\b", "<EPH>", text).splitlines()


def test_inspect_ports_report(ref: ReferenceEngine) -> None:
    for name in RUNNING:
        docker, ours = both(ref, "inspect", "-f", "{{json .NetworkSettings.Ports}}", name)
        assert ours == docker
    ports = json.loads(ref.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}",
                                  "range").stdout)
    assert ports == {"5000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"},
                                  {"HostIp": "::", "HostPort": "8000"}]}


def _docker_outcome(ref: ReferenceEngine, flag: str, spec: str) -> Any:
    proc = ref.docker("create", flag, spec, "busybox")
    if proc.returncode:
        err = proc.stderr.decode()
        assert err.startswith("docker: ") and err.endswith(USAGE_HINT), err
        return err[len("docker: "):-len(USAGE_HINT)]
    bindings, exposed, _ = created_body(ref, proc).split(" ")
    if flag == "--expose":
        return sorted(json.loads(exposed))
    stored = json.loads(bindings)
    return [(key, binding) for key in sorted(stored) for binding in stored[key]]


def test_recorded_tables_still_match_docker(ref: ReferenceEngine) -> None:
    rows = [("-p", spec, want) for spec, want in TABLES.PUBLISH]
    rows += [("--expose", spec, want) for spec, want in TABLES.EXPOSE]
    mismatches = [(flag, spec, want, got) for flag, spec, want in rows
                  if (got := _docker_outcome(ref, flag, spec)) != want]
    assert mismatches == []
