"""The daemon always comes up: one container it cannot take back (a published port taken while
it was down, a restart that fails, an image layer or a volume gone, a record that cannot be read)
is left stopped with the reason in State.Error, as Docker 20.10 does for a container whose start
at boot failed, and every other container stays running and manageable."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from typing import Iterator

import pytest

from harness import Daemon
from test_lifecycle import inspect, out

pytestmark = pytest.mark.integration

DOCKER_PORT_ERROR = ("Error starting userland proxy: listen tcp4 0.0.0.0:{port}: bind: address "
                     "already in use")


@contextlib.contextmanager
def squatting(d: Daemon, port: int) -> Iterator[None]:
    """Another process listening on 0.0.0.0:`port` in the daemon's network namespace."""
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{d.netns}", sys.executable, "-c",
         "import socket, sys, time\n"
         f"s = socket.socket(); s.bind(('0.0.0.0', {port})); s.listen()\n"
         "print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield
    finally:
        proc.kill()
        proc.wait()


def assert_still_managed(d: Daemon, name: str) -> None:
    """`name` runs on, and exec, stop and rm work on it."""
    assert inspect(d, name)["State"]["Running"] is True
    assert out(d.tether("exec", name, "echo", "alive")) == "alive"
    out(d.tether("stop", "-t", "1", name))
    assert inspect(d, name)["State"]["Status"] == "exited"
    cid = inspect(d, name)["Id"]
    out(d.tether("rm", name))
    assert d.leaks(cid) == []


def assert_no_host_path(d: Daemon, text: str) -> None:
    assert str(d.root) not in text and str(d.exec_root) not in text, text


def test_port_taken_while_down_stops_that_container_with_dockers_error(fresh_daemon):
    d = fresh_daemon
    web = out(d.tether("run", "-d", "--name", "web", "-p", "18080:80", "busybox", "sleep", "600"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    pid = inspect(d, "web")["State"]["Pid"]
    d.kill9()  # the port holders die with it; the container runs on under conmon
    with squatting(d, 18080):
        d.start()
        state = inspect(d, "web")["State"]
        assert (state["Status"], state["Running"], state["Pid"]) == ("exited", False, 0)
        assert state["Error"].startswith(
            "driver failed programming external connectivity on endpoint web ("), state
        assert state["Error"].endswith(DOCKER_PORT_ERROR.format(port=18080)), state
        assert state["ExitCode"] == 137  # killed: it cannot run with a port it does not hold
        assert not (d.exec_root / "netns" / web).exists()
        with contextlib.suppress(FileNotFoundError):
            assert b"sleep" not in open(f"/proc/{pid}/cmdline", "rb").read()
        assert "container could not be restored" in d.log()
        assert_still_managed(d, "other")
    out(d.tether("start", "web"))  # the port is free again
    assert inspect(d, "web")["State"]["Error"] == ""
    out(d.tether("rm", "-f", "web"))
    assert d.leaks(web) == []


def test_restart_always_that_cannot_get_its_port_back(fresh_daemon):
    """Docker 20.10: the daemon starts, logs "failed to start container", the container stays
    exited with its last exit code (137 here) and the proxy's bind error in State.Error."""
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "--name", "always", "--restart", "always", "-p",
                       "18081:80", "busybox", "sleep", "600"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    out(d.tether("stop", "-t", "1", "always"))
    d.stop()
    with squatting(d, 18081):
        d.start()
        state = inspect(d, "always")["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 137), state
        assert state["Error"].startswith(
            "driver failed programming external connectivity on endpoint always ("), state
        assert state["Error"].endswith(DOCKER_PORT_ERROR.format(port=18081)), state
        assert_still_managed(d, "other")
    out(d.tether("rm", "-f", "always"))
    assert d.leaks(cid) == []


def test_restart_always_whose_image_layer_is_gone(fresh_daemon):
    d = fresh_daemon
    out(d.tether("run", "--name", "base", "busybox", "sh", "-c", "echo layer > /f"))
    out(d.docker("commit", "base", "layered:1"))
    out(d.tether("rm", "base"))
    cid = out(d.tether("run", "-d", "--name", "layered", "--restart", "always", "layered:1",
                       "sleep", "600"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    status, image = d.api("GET", "/images/layered:1/json")
    assert status == 200, image
    top = image["RootFS"]["Layers"][-1].split(":", 1)[1]
    out(d.tether("stop", "-t", "1", "layered"))
    d.stop()
    shutil.rmtree(d.data_root / "image" / "layers" / top)
    (d.data_root / "image" / "blobs" / "sha256" / top).unlink(missing_ok=True)  # a store of an older tether
    d.start()
    state = inspect(d, "layered")["State"]
    assert state["Status"] == "exited" and state["Error"], state
    assert state["ExitCode"] == 137  # the last run's, as dockerd: a missing file of ours is
    assert_no_host_path(d, state["Error"])  # not the command's 127
    assert_still_managed(d, "other")
    out(d.tether("rm", "-f", "layered"))
    assert d.leaks(cid) == []


def test_restart_always_whose_volume_is_gone(fresh_daemon):
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "--name", "withvol", "--restart", "always", "-v",
                       "gonevol:/data", "busybox", "sleep", "600"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    out(d.tether("stop", "-t", "1", "withvol"))
    d.stop()
    shutil.rmtree(d.data_root / "volumes" / "gonevol")
    d.start()
    state = inspect(d, "withvol")["State"]
    assert (state["Status"], state["ExitCode"], state["Error"]) == (
        "exited", 137, "get gonevol: no such volume"), state
    assert_still_managed(d, "other")
    out(d.tether("rm", "-f", "withvol"))
    assert d.leaks(cid) == []


@pytest.mark.parametrize("damage", [b"{\"id\": tru", b"[]", b"{\"id\": 5}"])
def test_unreadable_record_is_set_aside_not_deleted(fresh_daemon, damage):
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "--name", "broken", "busybox", "sh", "-c",
                       "echo kept-log; sleep 600"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    d.kill9()
    (d.data_root / "containers" / cid / "config.json").write_bytes(damage)
    d.start()
    status, body = d.api("GET", f"/containers/{cid}/json")
    assert status == 404, body
    aside = d.data_root / "corrupt" / "containers" / cid
    assert (aside / "config.json").read_bytes() == damage
    assert b"kept-log" in (aside / "container.log").read_bytes()
    assert "unreadable container record set aside" in d.log() and str(aside) in d.log()
    # what ran of it is stopped and freed: only the set-aside directory is left
    assert d.leaks(cid) == [str(aside)]
    names = [c["Names"][0] for c in d.api("GET", "/containers/json?all=1")[1]]
    assert names == ["/other"]
    assert_still_managed(d, "other")


def test_unreadable_network_record_is_skipped_and_kept(fresh_daemon):
    d = fresh_daemon
    out(d.tether("network", "create", "goodnet"))
    bad = out(d.tether("network", "create", "badnet"))
    out(d.tether("run", "-d", "--name", "other", "--network", "goodnet", "busybox", "sleep",
                 "600"))
    d.stop()
    path = d.data_root / "network" / "networks" / f"{bad}.json"
    path.write_bytes(b"{\"id\": ")
    d.start()
    names = out(d.tether("network", "ls", "--format", "{{.Name}}")).split()
    assert "goodnet" in names and "badnet" not in names
    assert path.read_bytes() == b"{\"id\": "  # left for a person to look at
    assert "network not restored" in d.log()
    assert_still_managed(d, "other")


def test_unreadable_image_index_is_set_aside_and_the_daemon_comes_up(fresh_daemon):
    """images.json damaged while tetherd was down: the store opens without it (nothing deleted),
    running containers stay managed, a stopped one cannot start for want of its image and says
    so, and an image loaded again runs."""
    d = fresh_daemon
    stopped = out(d.tether("create", "--name", "stopped", "busybox", "true"))
    out(d.tether("run", "-d", "--name", "other", "busybox", "sleep", "600"))
    blobs = sorted(p.name for p in (d.data_root / "image" / "blobs" / "sha256").iterdir())
    d.kill9()
    (d.data_root / "image" / "images.json").write_bytes(b'{"sha256:')
    d.start()
    assert "image store record unreadable, set aside" in d.log()
    assert sorted(p.name for p in (d.data_root / "image" / "blobs" / "sha256").iterdir()) == blobs
    assert d.api("GET", "/images/json")[1] == []
    failed = d.tether("start", "stopped")
    assert failed.returncode != 0 and b"No such image" in failed.stderr, failed
    assert_no_host_path(d, failed.stderr.decode())
    assert_still_managed(d, "other")
    out(d.tether("rm", "stopped"))
    assert d.leaks(stopped) == []
    status, body = d.api("POST", "/tether/bootstrap/busybox", timeout=120)
    assert status == 200, body
    assert out(d.tether("run", "--rm", "busybox", "echo", "again")) == "again"


@pytest.mark.parametrize("record", ["bridge.json", "predefined.json"])
def test_unreadable_network_state_is_set_aside_and_made_anew(fresh_daemon, record):
    """The default bridge's record or the IDs of host/none damaged while tetherd was down: set
    aside and made anew, the daemon comes up and containers run on the bridge again."""
    d = fresh_daemon
    out(d.tether("create", "--name", "stopped", "busybox", "true"))
    d.stop()
    path = d.data_root / "network" / record
    path.write_bytes(b'{"id": ')
    d.start()
    assert "network record unreadable, set aside; made anew" in d.log()
    assert [p.read_bytes() for p in path.parent.glob(f"{record}.corrupt-*")] == [b'{"id": ']
    names = sorted(n["Name"] for n in d.api("GET", "/networks")[1])
    assert names == ["bridge", "host", "none"]
    out(d.tether("start", "stopped"))
    assert out(d.tether("run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0 | grep -c inet")) == "1"
    out(d.tether("rm", "-f", "stopped"))
