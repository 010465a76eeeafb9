"""`--pid host` against tetherd and Docker 20.10 (docker-py's test_create_with_host_pid_mode):
the container has no PID namespace of its own, so its PID 1 is the host's init, the same
process on both engines (they share this machine); inspect shows the mode; and a container
without it sees its own command as PID 1.
"""
from __future__ import annotations

import pytest

from reference import side_by_side

pytestmark = pytest.mark.integration

STEPS = [
    ("run", "--rm", "--pid", "host", "--network", "none", "busybox", "cat", "/proc/1/comm"),
    ("run", "--rm", "busybox", "cat", "/proc/1/comm"),
    ("create", "--name", "pidhost", "--pid", "host", "busybox", "true"),
    ("inspect", "-f", "{{.HostConfig.PidMode}}", "pidhost"),
    ("rm", "pidhost"),
]


def test_host_pid_mode_as_docker(daemon) -> None:
    with side_by_side("pid-mode", daemon.docker) as engines:
        seen = {name: [(r.returncode, r.stdout.decode() if step[0] != "create" else "",
                        r.stderr.decode()) for step in STEPS for r in [docker(*step)]]
                for name, docker in engines.items()}
    assert seen["tether"] == seen["docker"]
    assert seen["tether"][1][1] == "cat\n" and seen["tether"][3][1] == "host\n"
    with open("/proc/1/comm") as init:
        assert seen["tether"][0][1] == init.read()
