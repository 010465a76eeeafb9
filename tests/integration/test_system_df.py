"""`system df`: the docker CLI against tetherd and against the reference engine with the same
images and containers, and the tether CLI against both; sizes are compared exactly (the same
busybox files, the same bytes written), IDs and times normalised."""
from __future__ import annotations

import io
import re
import subprocess
import time

import pytest

from harness import BIN
from reference import reference_fixture
from tether.image.bootstrap import CHANGES, busybox_rootfs_tar

pytestmark = pytest.mark.integration

COMMANDS = [
    ["system", "df"],
    ["system", "df", "-v"],
    ["system", "df", "-v", "--format", "json"],
    ["system", "df", "--format", "json"],
    ["system", "df", "--format", "{{.Type}}: {{.Reclaimable}} of {{.Size}}"],
    ["system", "df", "--format", "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}"],
]


reference = reference_fixture("i5df")


def _cli(cli: str, host: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli, "-H", host, *args], input=input, capture_output=True, timeout=120)


def _populate(host: str) -> None:
    """A second image sharing busybox's layer, a stopped container that wrote 30 kB (and a hard
    link, counted once), one that wrote 20 kB into a named volume (one volume only: dockerd lists
    volumes in map order), a running one that wrote nothing."""
    time.sleep(1.1)  # dockerd lists images newest first by whole seconds: no tie with busybox's
    tar = io.BytesIO()
    busybox_rootfs_tar(tar)
    changes = [arg for change in [*CHANGES, "ENV SECOND=1"] for arg in ("-c", change)]
    assert _cli("docker", host, "import", *changes, "-", "second:1", input=tar.getvalue()).returncode == 0
    r = _cli("docker", host, "run", "--name", "i5df-written", "busybox", "sh", "-c",
             "echo hello > /f; ln /f /f2; dd if=/dev/zero of=/g bs=1k count=30 2>/dev/null")
    assert r.returncode == 0, r.stderr
    r = _cli("docker", host, "run", "--name", "i5df-vol", "-v", "i5df-data:/data", "busybox", "sh",
             "-c", "dd if=/dev/zero of=/data/z bs=1k count=20 2>/dev/null")
    assert r.returncode == 0, r.stderr
    r = _cli("docker", host, "run", "-d", "--name", "i5df-idle", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr


def normalise(text: bytes) -> str:
    out = text.decode()
    out = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+", "<DATE>", out)
    out = re.sub(r'"Mountpoint":"[^"]*"', '"Mountpoint":"<PATH>"', out)  # each engine's data root
    out = re.sub(r"[0-9a-f]{64}", "<ID>", out)
    out = re.sub(r"\b[0-9a-f]{12}\b", "<SHORT>", out)
    out = re.sub(r"Less than a second|About an? \w+|\d+ (?:second|minute|hour|day|week|month|year)s?",
                 "<DUR>", out)
    return re.sub(r" {2,}", "  ", out)


def _outputs(cli: str, host: str) -> list[tuple]:
    return [(r.returncode, normalise(r.stdout), normalise(r.stderr))
            for r in (_cli(cli, host, *args) for args in COMMANDS)]


def test_system_df_vs_docker(fresh_daemon, reference):
    hosts = {"docker": reference.host, "tether": fresh_daemon.host}
    for host in hosts.values():
        _populate(host)
    docker_cli = {name: _outputs("docker", host) for name, host in hosts.items()}
    assert docker_cli["tether"] == docker_cli["docker"]
    tether_cli = {name: _outputs(str(BIN / "tether"), host) for name, host in hosts.items()}
    assert tether_cli["tether"] == docker_cli["docker"]
    assert tether_cli["docker"] == docker_cli["docker"]
    summary, verbose = docker_cli["tether"][0][1], docker_cli["tether"][1][1]
    assert summary.splitlines()[1:3] == ["Images  2  1  1.983MB  1.983MB (100%)",
                                         "Containers  3  1  30.73kB  30.73kB (100%)"]
    assert summary.splitlines()[3] == "Local Volumes  1  1  20.48kB  0B (0%)"
    assert "second  1  <SHORT>  <DUR> ago  1.98MB  1.983MB  0B  0\n" in verbose
    assert "0  30.7kB  <DUR> ago  Exited (0) <DUR> ago  i5df-written\n" in verbose
