"""docker events, pause/unpause, update --restart, start -a and attach, with the docker CLI 28."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

from harness import Daemon


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _events(daemon: Daemon, since: int, *args: str) -> list[dict]:
    until = str(int(time.time()) + 1)
    out = _ok(daemon.docker("events", "--since", str(since), "--until", until,
                            "--format", "{{json .}}", *args, timeout=30))
    return [json.loads(line) for line in out.splitlines() if line]


def test_lifecycle_events_as_dockerd(daemon: Daemon) -> None:
    name = _name("ev")
    t0 = int(time.time())
    cid = _ok(daemon.docker("run", "-d", "--name", name, "-l", "foo=bar", "busybox",
                            "sleep", "100")).strip()
    try:
        _ok(daemon.docker("exec", name, "true"))
        _ok(daemon.docker("pause", name))
        _ok(daemon.docker("unpause", name))
        _ok(daemon.docker("update", "--restart", "always", name))
        _ok(daemon.docker("rename", name, name + "x"))
        _ok(daemon.docker("restart", "-t", "0", name + "x"))
    finally:
        _ok(daemon.docker("rm", "-f", name + "x"))
    events = _events(daemon, t0, "--filter", f"container={cid}")
    assert [e["Action"] for e in events] == [
        "create", "start", "exec_create: true ", "exec_start: true ", "exec_die", "pause",
        "unpause", "update", "rename", "kill", "kill", "die", "stop", "start", "restart",
        "kill", "die", "destroy"]
    first = events[0]
    assert first["status"] == "create" and first["id"] == cid and first["from"] == "busybox"
    assert first["Type"] == "container" and first["scope"] == "local"
    assert first["Actor"] == {"ID": cid, "Attributes": {"foo": "bar", "image": "busybox",
                                                         "name": name}}
    assert first["time"] == first["timeNano"] // 10**9
    by_action = {e["Action"]: e["Actor"]["Attributes"] for e in events}
    assert by_action["exec_die"]["exitCode"] == "0" and "execID" in by_action["exec_die"]
    assert by_action["die"]["exitCode"] == "137"
    assert by_action["rename"]["oldName"] == "/" + name
    assert by_action["kill"]["signal"] == "9"


def test_events_filters_and_human_format(daemon: Daemon) -> None:
    name = _name("evf")
    t0 = int(time.time())
    _ok(daemon.docker("run", "--name", name, "-l", "tier=web", "busybox", "true"))
    _ok(daemon.docker("rm", name))
    dies = _events(daemon, t0, "--filter", f"container={name}", "--filter", "event=die")
    assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == ["0"]
    labelled = _events(daemon, t0, "--filter", "label=tier=web")
    assert [e["Action"] for e in labelled] == ["create", "attach", "start", "die", "destroy"]
    assert _events(daemon, t0, "--filter", "label=tier=db") == []
    human = _ok(daemon.docker("events", "--since", str(t0), "--until", str(int(time.time()) + 1),
                              "--filter", f"container={name}", "--filter", "event=create"))
    assert "container create " in human and f"name={name}" in human and "tier=web" in human
    # as Docker 20.10, a key it does not know is no error and filters nothing out
    assert len(_events(daemon, t0, "--filter", f"container={name}", "--filter", "colour=red")) == 5


def test_live_follower_sees_new_events(daemon: Daemon) -> None:
    name = _name("evl")
    follower = subprocess.Popen(
        ["docker", "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}",
         "--filter", f"container={name}"], stdout=subprocess.PIPE,
        env={**os.environ, "DOCKER_HOST": daemon.host})
    try:
        time.sleep(0.5)
        _ok(daemon.docker("create", "--name", name, "busybox", "true"))
        _ok(daemon.docker("rm", name))
        lines = [follower.stdout.readline().decode().strip() for _ in range(2)]
        assert lines == [f"create {name}", f"destroy {name}"]
    finally:
        follower.kill()
        follower.wait()
        daemon.docker("rm", "-f", name)


def test_pause_unpause_state_and_errors(daemon: Daemon) -> None:
    name = _name("pz")
    cid = _ok(daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "100")).strip()
    try:
        _ok(daemon.docker("pause", name))
        state = json.loads(_ok(daemon.docker("inspect", "-f", "{{json .State}}", name)))
        assert state["Status"] == "paused" and state["Paused"] and state["Running"]
        ps = _ok(daemon.docker("ps", "-f", f"name={name}", "--format", "{{.Status}}")).strip()
        assert ps.startswith("Up ") and ps.endswith("(Paused)")
        again = daemon.docker("pause", name)
        assert again.stderr.decode().strip() == \
            f"Error response from daemon: Container {cid} is already paused"
        _ok(daemon.docker("unpause", name))
        assert _ok(daemon.docker("exec", name, "echo", "thawed")) == "thawed\n"
        again = daemon.docker("unpause", name)
        assert again.stderr.decode().strip() == \
            f"Error response from daemon: Container {cid} is not paused"
        _ok(daemon.docker("pause", name))
        started = time.monotonic()
        _ok(daemon.docker("stop", "-t", "1", name))  # thawed, so that SIGKILL after 1 s works
        assert time.monotonic() - started < 4
        stopped = daemon.docker("pause", name)
        assert stopped.stderr.decode().strip() == \
            f"Error response from daemon: Container {cid} is not running"
    finally:
        daemon.docker("rm", "-f", name)


def test_update_restart_policy_and_limits(daemon: Daemon) -> None:
    """The restart policy and the limits of a created container (saved, applied at its start;
    test_limits_vs_docker covers running ones)."""
    name = _name("up")
    _ok(daemon.docker("create", "--name", name, "--memory", "20m", "busybox", "true"))
    try:
        _ok(daemon.docker("update", "--restart", "on-failure:3", name))
        policy = json.loads(_ok(daemon.docker("inspect", "-f", "{{json .HostConfig.RestartPolicy}}",
                                              name)))
        assert policy == {"Name": "on-failure", "MaximumRetryCount": 3}
        _ok(daemon.docker("update", "--memory", "10m", name))
        memory = _ok(daemon.docker("inspect", "-f", "{{.HostConfig.Memory}}", name))
        assert memory.strip() == str(10 << 20)
    finally:
        daemon.docker("rm", "-f", name)


def test_start_attach_and_attach_to_running(daemon: Daemon) -> None:
    name = _name("sa")
    _ok(daemon.docker("create", "--name", name, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"))
    try:
        result = daemon.docker("start", "-a", name)
        assert result.returncode == 3
        assert result.stdout.decode() == "out\n" and result.stderr.decode() == "err\n"
    finally:
        daemon.docker("rm", "-f", name)
    name = _name("at")
    _ok(daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                      "echo early; sleep 1; echo late; exit 4"))
    try:
        time.sleep(0.3)
        result = daemon.docker("attach", name, timeout=20)
        assert result.returncode == 4
        assert result.stdout.decode() == "late\n"  # output from now on, not the log
    finally:
        daemon.docker("rm", "-f", name)
