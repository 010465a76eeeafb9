"""`tether kube generate` is a client of the Engine API: pointed at Docker 20.10 it must write the
same YAML as for tetherd after the same docker commands, and the variables the YAML gives on a
cluster must match the ones Docker's own --link gives, name by name."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from reference import ReferenceEngine, started
from test_kube import CLUSTER_IP, validated
from tether.rules.kube_env import service_env

pytestmark = pytest.mark.integration
TETHER = str(Path(sys.executable).parent / "tether")
COMMANDS = (
    ("run", "-d", "--name", "kdb", "-e", "PG_VERSION=15", "--expose", "5432", "-v", "kvol:/data",
     "--tmpfs", "/run:size=16m", "busybox", "nc", "-ll", "-p", "5432", "-e", "echo", "db-ok"),
    ("run", "-d", "--name", "kweb", "-P", "--expose", "5000", "--link", "kdb:db",
     "--restart", "always", "-w", "/w", "busybox", "sleep", "600"),
    # a pod: a member in the owner's network, IPC and PID namespaces
    ("run", "-d", "--name", "kown", "--ipc", "shareable", "--expose", "8080", "busybox", "sleep",
     "600"),
    ("run", "-d", "--name", "kside", "--network", "container:kown", "--ipc", "container:kown",
     "--pid", "container:kown", "busybox", "sleep", "600"),
)


@pytest.fixture(scope="module")
def ref() -> Iterator[ReferenceEngine]:
    with started("kube") as engine:
        for command in COMMANDS:
            engine.docker(*command, check=True)
        yield engine


@pytest.fixture
def ours(daemon):
    for command in COMMANDS:
        result = daemon.docker(*command)
        assert result.returncode == 0, result.stderr
    try:
        yield daemon
    finally:
        daemon.docker("rm", "-f", "-v", "kweb", "kdb", "kside", "kown")
        daemon.docker("volume", "rm", "kvol")


def generate(host: str, *names: str) -> subprocess.CompletedProcess:
    return subprocess.run([TETHER, "-H", host, "kube", "generate", "--service",
                           *(names or ("kweb", "kdb"))], capture_output=True, timeout=60)


@pytest.mark.parametrize("names", [(), ("kside", "kown")], ids=["link", "pod"])
def test_same_yaml_from_docker_and_tether(ref: ReferenceEngine, ours, names) -> None:
    """The same YAML and warnings from both engines' inspect JSON: for the linked pair, and
    for a pod of two (how each engine shows a member's `container:` modes)."""
    theirs, mine = generate(ref.host, *names), generate(ours.host, *names)
    assert theirs.returncode == mine.returncode == 0, (theirs.stderr, mine.stderr)
    documents = validated(theirs.stdout.decode())
    if names:
        (pod,) = documents
        assert [c["name"] for c in pod["spec"]["containers"]] == ["kown", "kside"]
        assert pod["spec"]["shareProcessNamespace"] is True
    assert mine.stdout.decode() == theirs.stdout.decode()
    assert mine.stderr.decode() == theirs.stderr.decode()


def test_env_parity_with_dockers_own_link(ref: ReferenceEngine) -> None:
    documents = list(yaml.safe_load_all(generate(ref.host).stdout))
    services = [{**s, "spec": {**s["spec"], "clusterIP": CLUSTER_IP}}
                for s in documents if s["kind"] == "Service"]
    (web,) = [p for p in documents if p["kind"] == "Pod" and p["metadata"]["name"] == "kweb"]
    cluster = {**service_env(services),
               **{e["name"]: e["value"] for e in web["spec"]["containers"][0]["env"]}}
    raw = ref.docker("exec", "kweb", "cat", "/proc/1/environ", check=True).stdout.decode()
    docker_env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    db_ip = ref.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "kdb",
                       check=True).stdout.decode().strip()

    def link_vars(env: dict[str, str], ip: str) -> dict[str, str]:
        return {k: re.sub(re.escape(ip) + r"\b", "<address>", v) for k, v in env.items()
                if k.startswith("DB_") and "_SERVICE_" not in k}

    assert link_vars(cluster, CLUSTER_IP) == link_vars(docker_env, db_ip)
    assert "DB_PORT_5432_TCP_ADDR" in link_vars(docker_env, db_ip)
