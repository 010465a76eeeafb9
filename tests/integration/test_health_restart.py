"""Health checks across a daemon restart: the status saved with the record is shown at once and
probing resumes (Docker 23's fix of moby#41871; 20.10 never probes a live-restored container
again), for a daemon stopped cleanly and for one killed."""
from __future__ import annotations

import json
import time
from typing import Callable

import pytest

from harness import Daemon


def _health(d: Daemon, name: str) -> dict:
    out = d.docker("inspect", "--format", "{{json .State.Health}}", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _wait(d: Daemon, name: str, test: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + 60
    while not test(health := _health(d, name)):
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    return health


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_health_survives_a_daemon_restart(fresh_daemon: Daemon, how: str) -> None:
    d = fresh_daemon
    # one made by tether's own CLI, one by docker's: the same flags
    for client, name, cmd in ((d.tether, "good", "exit 0"), (d.docker, "sick", "exit 1")):
        r = client("run", "-d", "--name", name, "--health-cmd", cmd, "--health-interval", "1s",
                   "--health-retries", "1", "busybox", "sleep", "300")
        assert r.returncode == 0, r.stderr
    _wait(d, "good", lambda h: h["Status"] == "healthy")
    _wait(d, "sick", lambda h: h["Status"] == "unhealthy")
    d.stop() if how == "stop" else d.kill9()
    d.start()
    assert _health(d, "good")["Status"] == "healthy"
    before = _health(d, "sick")
    assert before["Status"] == "unhealthy"
    # probing resumes: new results after the restart, the streak growing on
    after = _wait(d, "sick", lambda h: h["FailingStreak"] > before["FailingStreak"] + 1)
    assert after["Log"][-1]["Start"] > before["Log"][-1]["End"]
    ps = d.tether("ps", "--format", "{{.Names}} {{.Status}}").stdout.decode()
    assert "(healthy)" in ps and "(unhealthy)" in ps, ps
    # and stops with the container
    assert d.docker("stop", "-t", "1", "good").returncode == 0
    stopped = _health(d, "good")
    time.sleep(2)
    assert _health(d, "good") == stopped and stopped["Status"] == "unhealthy"
