"""A paused container stays paused across a daemon restart (killed or stopped): its record and
runc's freezer both say so, the views show it, and unpause, kill and stop work afterwards."""
from __future__ import annotations

import pytest

from test_lifecycle import inspect, out

pytestmark = pytest.mark.integration


def _paused_view(d, name: str) -> tuple:
    state = inspect(d, name)["State"]
    lines = out(d.docker("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}")).splitlines()
    _, ps_state, ps_status = next(line for line in lines if line.startswith(name + " ")).split(" ", 2)
    return state["Status"], state["Paused"], state["Running"], ps_state, \
        ps_status.endswith("(Paused)")


@pytest.mark.parametrize("how", ["kill9", "stop"])
def test_paused_state_survives_a_daemon_restart(fresh_daemon, how):
    d = fresh_daemon
    out(d.docker("run", "-d", "--name", "frozen", "busybox", "sleep", "600"))
    out(d.docker("run", "-d", "--name", "frozen2", "busybox", "sleep", "600"))
    out(d.docker("pause", "frozen", "frozen2"))
    pid = inspect(d, "frozen")["State"]["Pid"]
    getattr(d, how)()
    d.start()
    assert _paused_view(d, "frozen") == ("paused", True, True, "paused", True)
    assert inspect(d, "frozen")["State"]["Pid"] == pid
    info = d.sdk().info()
    assert (info["ContainersPaused"], info["ContainersRunning"]) == (2, 0)
    status, body = d.api("POST", "/containers/frozen/attach?stream=1&stdout=1")
    assert (status, body["message"]) == (
        409, "container frozen is paused, unpause the container before attach")
    again = d.docker("pause", "frozen")
    assert again.returncode == 1 and "is already paused" in again.stderr.decode()

    assert out(d.docker("unpause", "frozen")) == "frozen"
    assert _paused_view(d, "frozen") == ("running", False, True, "running", False)
    assert out(d.docker("exec", "frozen", "echo", "thawed")) == "thawed"

    # a container still paused takes a kill (thawed to receive it) and its exit is recorded
    assert out(d.docker("kill", "frozen2")) == "frozen2"
    assert out(d.docker("wait", "frozen2")) == "137"
    assert _paused_view(d, "frozen2")[:3] == ("exited", False, False)
    out(d.docker("rm", "-f", "frozen", "frozen2"))
