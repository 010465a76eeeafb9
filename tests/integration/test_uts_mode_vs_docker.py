"""`--uts host` against tetherd and Docker 20.10 (docker-py's test_create_with_uts_mode): the
container has no UTS namespace of its own, so `hostname` in it prints the host's name, while
inspect keeps its generated Config.Hostname, as dockerd does; inspect shows the mode.
"""
from __future__ import annotations

import re
import socket

import pytest

from reference import side_by_side

pytestmark = pytest.mark.integration

STEPS = [
    ("run", "--rm", "--uts", "host", "busybox", "hostname"),
    ("run", "--rm", "--uts", "host", "busybox", "cat", "/etc/hostname"),
    ("create", "--name", "utshost", "--uts", "host", "busybox", "true"),
    ("inspect", "-f", "{{.HostConfig.UTSMode}} {{.Config.Hostname}}", "utshost"),
    ("rm", "utshost"),
    ("create", "--uts", "host", "--hostname", "x", "busybox", "true"),
]


def _normalised(text: bytes) -> str:
    return re.sub(r"\b[0-9a-f]{12,64}\b", "<id>", text.decode())


def test_host_uts_mode_as_docker(daemon) -> None:
    with side_by_side("uts-mode", daemon.docker) as engines:
        seen = {name: [(r.returncode, _normalised(r.stdout), _normalised(r.stderr))
                       for step in STEPS for r in [docker(*step)]]
                for name, docker in engines.items()}
    assert seen["tether"] == seen["docker"]
    assert seen["tether"][0][1] == socket.gethostname() + "\n"
