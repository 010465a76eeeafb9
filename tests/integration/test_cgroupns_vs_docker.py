"""`--cgroupns private` against tetherd and Docker 20.10 (docker-py's test_create_with_cgroupns):
the container gets a cgroup namespace of its own, rooted at its cgroup, so /proc/self/cgroup
shows `/` for every hierarchy, the same lines on both engines; without it (the host's, the
default on this cgroup v1 host) the paths are the container's cgroups. Inspect shows the mode.
"""
from __future__ import annotations

import pytest

from reference import side_by_side

pytestmark = pytest.mark.integration

STEPS = [
    ("run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup"),
    ("run", "--rm", "--cgroupns", "private", "busybox", "grep", "-c", " cgroup", "/proc/mounts"),
    ("create", "--name", "cgns", "--cgroupns", "private", "busybox", "true"),
    ("inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "cgns"),
    ("rm", "cgns"),
]


def test_private_cgroupns_as_docker(daemon) -> None:
    with side_by_side("cgroupns", daemon.docker) as engines:
        seen = {name: [(r.returncode, r.stdout.decode() if step[0] != "create" else "",
                        r.stderr.decode()) for step in STEPS for r in [docker(*step)]]
                for name, docker in engines.items()}
    assert seen["tether"] == seen["docker"]
    lines = seen["tether"][0][1].splitlines()
    assert lines and all(line.endswith(":/") for line in lines)
    assert seen["tether"][3][1] == "private\n"
    host = daemon.docker("run", "--rm", "busybox", "cat", "/proc/self/cgroup")
    assert not all(line.endswith(":/") for line in host.stdout.decode().splitlines())
