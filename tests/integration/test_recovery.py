"""A daemon killed with SIGKILL while containers run; the next daemon finds them as they are."""
from __future__ import annotations

import time

import pytest

from test_lifecycle import inspect, out, wait_for

pytestmark = pytest.mark.integration


def test_containers_survive_daemon_kill(fresh_daemon):
    d = fresh_daemon
    runner = out(d.tether("run", "-d", "--name", "runner", "busybox", "sh", "-c",
                          "echo before; sleep 2; echo after; exit 5"))
    sleeper = out(d.tether("run", "-d", "--name", "sleeper", "busybox", "sleep", "60"))
    wait_for(lambda: "before" in out(d.tether("logs", "runner")), what="first output")
    d.kill9()
    d.start()
    ps = out(d.tether("ps"))
    assert "runner" in ps and "sleeper" in ps and ps.count("Up ") == 2
    assert "before" in out(d.tether("logs", "runner"))
    # the exit that happens under the new daemon is recorded with its code
    assert out(d.tether("wait", "runner")) == "5"
    assert out(d.tether("logs", "runner")).split() == ["before", "after"]
    assert inspect(d, "runner")["State"]["ExitCode"] == 5
    assert out(d.tether("rm", "-f", "runner", "sleeper")).split() == ["runner", "sleeper"]
    assert d.leaks(runner) == [] and d.leaks(sleeper) == []


def test_exit_while_daemon_is_down(fresh_daemon):
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "busybox", "sh", "-c", "sleep 0.5; exit 4"))
    d.kill9()
    time.sleep(1.5)
    d.start()
    state = inspect(d, cid)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 4)
    out(d.tether("rm", cid))
    assert d.leaks(cid) == []


def test_sigterm_stops_the_daemon_and_leaves_containers_running(fresh_daemon):
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "busybox", "sleep", "60"))
    pid = inspect(d, cid)["State"]["Pid"]
    d.stop()
    assert d.proc.returncode == 0, d.log()
    assert not (d.exec_root / "tether.sock").exists()
    assert open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0] == b"sleep"
    d.start()
    assert inspect(d, cid)["State"]["Pid"] == pid
    out(d.tether("rm", "-f", cid))
    assert d.leaks(cid) == []
