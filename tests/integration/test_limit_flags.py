"""tether's own run/create take the docker CLI's limit flags: the same HostConfig reaches the
daemon as when the docker CLI sends them, and bad values are refused in the docker CLI's words
(exit 125) before the daemon is asked."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

FLAGS = ["-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m",
         "--memory-swappiness", "10", "--oom-kill-disable", "--cpus", "0.5", "-c", "512",
         "--cpuset-cpus", "0", "--cpuset-mems", "0", "--pids-limit", "20", "--cgroup-parent",
         "/tether-flags-parent"]
FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "MemorySwappiness", "OomKillDisable",
          "NanoCpus", "CpuShares", "CpusetCpus", "CpusetMems", "PidsLimit", "CgroupParent")


def test_limit_flags_reach_the_api_as_the_docker_clis(daemon) -> None:
    shown = []
    for run in (daemon.docker, daemon.tether):
        r = run("create", *FLAGS, "busybox", "true")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.decode().strip()
        try:
            host_config = json.loads(daemon.docker("inspect", cid).stdout)[0]["HostConfig"]
        finally:
            daemon.docker("rm", cid)
        shown.append({key: host_config[key] for key in FIELDS})
    assert shown[0]["Memory"] == 64 << 20 and shown[0]["NanoCpus"] == 500_000_000
    assert shown[1] == shown[0]


@pytest.mark.parametrize("flags", [["-m", "lots"], ["--memory-swap", "x"], ["--cpus", "half"],
                                   ["--memory-reservation", "1q"]])
def test_bad_limit_values_are_refused_as_the_docker_cli(daemon, flags) -> None:
    results = [run("create", *flags, "busybox", "true") for run in (daemon.docker, daemon.tether)]
    assert [r.returncode for r in results] == [125, 125]
    first_line = results[0].stderr.decode().splitlines()[0].removeprefix("docker: ")
    assert first_line in results[1].stderr.decode(), results[1].stderr
