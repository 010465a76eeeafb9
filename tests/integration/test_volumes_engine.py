"""Volumes through the docker SDK, the docker CLI and the tether CLI against a tetherd of this
module's own (prune would otherwise reach other tests' volumes on the shared daemon)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

from conftest import running_daemon
from harness import Daemon

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vd() -> Iterator[Daemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture(autouse=True)
def clean(vd: Daemon) -> Iterator[None]:
    """Each test starts and ends without containers or volumes."""
    yield
    vd.remove_all()
    status, reply = vd.api("GET", "/volumes")
    for volume in reply["Volumes"]:
        vd.api("DELETE", f"/volumes/{volume['Name']}?force=1")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def mounted(path: str) -> bool:
    return any(line.split()[4] == path for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_sdk_volume_api(vd):
    import docker
    client = vd.sdk()
    volume = client.volumes.create("sdkvol", labels={"app": "web"})
    assert volume.name == "sdkvol" and volume.attrs["Labels"] == {"app": "web"}
    assert volume.attrs["Mountpoint"] == str(vd.data_root / "volumes" / "sdkvol" / "_data")
    assert client.volumes.get("sdkvol").attrs == volume.attrs
    anonymous = client.volumes.create()
    assert len(anonymous.name) == 64
    assert sorted(v.name for v in client.volumes.list()) == sorted(["sdkvol", anonymous.name])
    assert [v.name for v in client.volumes.list(filters={"label": "app=web"})] == ["sdkvol"]
    # API 1.44: prune takes anonymous volumes only, and one made without a name is anonymous
    # (labelled so, as dockerd 23+ labels it); named ones go with `all`
    assert anonymous.attrs["Labels"] == {"com.docker.volume.anonymous": ""}
    assert client.volumes.prune() == {"VolumesDeleted": [anonymous.name], "SpaceReclaimed": 0}
    (Path(volume.attrs["Mountpoint"]) / "f").write_bytes(b"x" * 2000)
    report = client.volumes.prune(filters={"all": "true", "label": "app"})
    assert report == {"VolumesDeleted": ["sdkvol"], "SpaceReclaimed": 2000}
    with pytest.raises(docker.errors.NotFound) as err:
        client.volumes.get("sdkvol")
    assert "get sdkvol: no such volume" in str(err.value)
    with pytest.raises(docker.errors.APIError) as err:
        client.volumes.create("a")
    assert err.value.status_code == 400


def test_volume_in_use_cannot_be_removed(vd):
    ok(vd.docker("volume", "create", "busyvol"))
    cid = ok(vd.docker("create", "-v", "busyvol:/data", "busybox", "true")).strip()
    status, reply = vd.api("GET", "/volumes?filters=" + quote(json.dumps({"dangling": ["false"]})))
    assert [v["Name"] for v in reply["Volumes"]] == ["busyvol"]
    for args in (("volume", "rm", "busyvol"), ("volume", "rm", "-f", "busyvol")):
        proc = vd.docker(*args)
        assert proc.returncode == 1
        assert proc.stderr.decode() == (f"Error response from daemon: remove busyvol: volume is "
                                        f"in use - [{cid}]\n")
    assert "Deleted" not in ok(vd.docker("volume", "prune", "-af"))
    ok(vd.docker("rm", cid))
    assert ok(vd.docker("volume", "rm", "busyvol")) == "busyvol\n"


def test_prune_with_an_old_api_version_removes_named_volumes(vd):
    ok(vd.docker("volume", "create", "oldapi"))
    env_proc = subprocess.run(["docker", "volume", "prune", "-f"], capture_output=True,
                              env={**os.environ, "DOCKER_HOST": vd.host,
                                   "DOCKER_API_VERSION": "1.41"})
    assert env_proc.stdout.decode() == "Deleted Volumes:\noldapi\n\nTotal reclaimed space: 0B\n"


def test_tmpfs_volume_is_mounted_while_used(vd):
    ok(vd.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                 "--opt", "o=size=1m,uid=1000", "tmpvol"))
    mountpoint = str(vd.data_root / "volumes" / "tmpvol" / "_data")
    cid = ok(vd.docker("run", "-d", "-v", "tmpvol:/t", "busybox", "sleep", "300")).strip()
    assert mounted(mountpoint)
    seen = ok(vd.docker("exec", cid, "sh", "-c", "grep ' /t ' /proc/mounts; stat -c %u /t"))
    assert "tmpfs /t tmpfs rw,relatime,size=1024k,uid=1000" in seen and seen.endswith("1000\n")
    ok(vd.docker("stop", "-t", "0", cid))
    assert not mounted(mountpoint)
    ok(vd.docker("rm", cid))


def test_bind_volume_read_only(vd):
    with tempfile.TemporaryDirectory(dir="/var/tmp") as src:
        Path(src, "f").write_text("from the host\n")
        ok(vd.docker("volume", "create", "--opt", "type=none", "--opt", f"device={src}",
                     "--opt", "o=bind,ro", "bindvol"))
        proc = vd.docker("run", "--rm", "-v", "bindvol:/t", "busybox", "sh", "-c",
                         "cat /t/f; touch /t/x")
        assert proc.stdout == b"from the host\n"
        assert b"Read-only file system" in proc.stderr and proc.returncode == 1
        assert not Path(src, "x").exists()
        assert not mounted(str(vd.data_root / "volumes" / "bindvol" / "_data"))


def test_mount_errors_are_dockers(vd):
    ok(vd.docker("volume", "create", "--opt", "type=none", "--opt", "device=/nonexistent-i8a",
                 "--opt", "o=bind", "badbind"))
    ok(vd.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                 "--opt", "o=size=abc,ro", "badtmpfs"))
    base = vd.data_root / "volumes"
    proc = vd.docker("run", "--rm", "-v", "badbind:/t", "busybox", "true")
    assert (f"error while mounting volume '{base}/badbind/_data': failed to mount local volume: "
            f"mount /nonexistent-i8a:{base}/badbind/_data, flags: 0x1000: no such file or "
            "directory") in proc.stderr.decode()
    proc = vd.docker("run", "--rm", "-v", "badtmpfs:/t", "busybox", "true")
    assert (f"error while mounting volume '{base}/badtmpfs/_data': failed to mount local volume: "
            f"mount tmpfs:{base}/badtmpfs/_data, flags: 0x1, data: size=abc: invalid argument"
            ) in proc.stderr.decode()


def test_tether_cli_volume_commands(vd):
    assert vd.tether("volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=x",
                     "clivol").stdout == b"clivol\n"
    anonymous = ok(vd.tether("volume", "create")).strip()
    listing = ok(vd.tether("volume", "ls"))
    assert listing.splitlines() == ["DRIVER    VOLUME NAME"] + sorted(
        [f"local     {anonymous}", "local     clivol"])
    assert ok(vd.tether("volume", "ls", "-q", "-f", "label=a")) == "clivol\n"
    assert ok(vd.tether("volume", "ls", "--format", "{{.Name}}:{{.Labels}}", "-f",
                        "name=cli")) == "clivol:a=b\n"
    [info] = json.loads(ok(vd.tether("volume", "inspect", "clivol")))
    assert info["Options"] == {"type": "tmpfs", "device": "x"} and info["Labels"] == {"a": "b"}
    assert ok(vd.tether("volume", "inspect", "-f", "{{.Driver}} {{.Scope}}", "clivol")) == \
        "local local\n"
    proc = vd.tether("volume", "inspect", "clivol", "nosuch")
    assert proc.returncode == 1
    assert proc.stderr == b"Error response from daemon: get nosuch: no such volume\n"
    proc = vd.tether("volume", "prune", input=b"n\n")
    assert proc.stdout.decode() == ("WARNING! This will remove anonymous local volumes not used "
                                    "by at least one container.\nAre you sure you want to "
                                    "continue? [y/N] ")
    proc = vd.tether("volume", "prune", "-a", input=b"y\n")
    assert proc.stdout.decode().endswith(f"Deleted Volumes:\n{anonymous}\n\n"
                                         "Total reclaimed space: 0B\n")
    assert ok(vd.tether("volume", "rm", "clivol", "-f", "nosuch")) == "clivol\nnosuch\n"


def test_volume_records_survive_kill9(fresh_daemon):
    d = fresh_daemon
    ok(d.docker("volume", "create", "--label", "keep=1", "durable"))
    ok(d.docker("run", "-v", "durable:/data", "busybox", "sh", "-c", "echo persisted > /data/file"))
    d.kill9()
    d.start()
    [info] = json.loads(ok(d.docker("volume", "inspect", "durable")))
    assert info["Labels"] == {"keep": "1"}
    d.remove_all()
    assert ok(d.docker("run", "--rm", "-v", "durable:/data", "busybox", "cat",
                       "/data/file")) == "persisted\n"


def test_opt_volume_released_when_its_container_died_while_the_daemon_was_down(fresh_daemon):
    """Nobody is left to unmount a tmpfs volume whose container died while the daemon was
    killed: the restarted daemon does it once it knows the volume's users again."""
    d = fresh_daemon
    ok(d.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "scratch"))
    mountpoint = str(d.data_root / "volumes" / "scratch" / "_data")
    cid = ok(d.docker("run", "-d", "-v", "scratch:/s", "busybox", "sleep", "1000")).strip()
    assert mounted(mountpoint)
    pid = json.loads(ok(d.docker("inspect", cid)))[0]["State"]["Pid"]
    d.kill9()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30  # conmon reaps it and records its exit status
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    d.start()
    assert json.loads(ok(d.docker("inspect", cid)))[0]["State"]["Status"] == "exited"
    assert not mounted(mountpoint)
    assert ok(d.docker("run", "--rm", "-v", "scratch:/s", "busybox", "sh", "-c",
                       "grep -q ' /s tmpfs' /proc/mounts && echo tmpfs")) == "tmpfs\n"
    d.remove_all()
    ok(d.docker("volume", "rm", "scratch"))


def test_daemon_starts_when_a_running_containers_volume_vanished(fresh_daemon):
    """A volume deleted by hand while the daemon was down must not keep it from starting: the
    running container that used it is still known and can be stopped and removed."""
    d = fresh_daemon
    cid = ok(d.docker("run", "-d", "-v", "vanishing:/v", "busybox", "sleep", "1000")).strip()
    d.kill9()
    subprocess.run(["rm", "-rf", str(d.data_root / "volumes" / "vanishing")], check=True)
    d.start()
    assert json.loads(ok(d.docker("inspect", cid)))[0]["State"]["Status"] == "running"
    ok(d.docker("rm", "-f", cid))
    assert d.leaks(cid) == []


COMPOSE_FILE = """\
version: "3.7"
services:
  app:
    image: busybox
    network_mode: bridge
    command: sh -c "cat /data/f 2>/dev/null || echo fresh; echo kept > /data/f"
    volumes:
      - appdata:/data
volumes:
  appdata:
    labels:
      purpose: test
"""


def test_compose_named_volume_lifecycle(vd, tmp_path):
    """docker-compose 1.29 makes the project's volume with its labels, finds it again on the
    next `up`, and `down -v` removes it."""
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)

    def compose(*args: str) -> str:
        proc = subprocess.run(["docker-compose", "-p", "i8avol", *args], cwd=tmp_path,
                              capture_output=True, env={**os.environ, "DOCKER_HOST": vd.host},
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode()

    try:
        assert "fresh" in compose("up", "--no-color")
        [info] = json.loads(ok(vd.docker("volume", "inspect", "i8avol_appdata")))
        assert info["Labels"]["purpose"] == "test"
        assert info["Labels"]["com.docker.compose.project"] == "i8avol"
        assert "kept" in compose("up", "--no-color")
    finally:
        compose("down", "-v")
    assert ok(vd.docker("volume", "ls", "-q")) == ""
