"""Mounts in containers through tetherd alone: durability across a SIGKILLed daemon, nothing left
behind, the tether CLI's flags, and the docker SDK's volumes and archive calls."""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from test_lifecycle import inspect, out

pytestmark = pytest.mark.integration


def unique(base: str) -> str:
    return f"i8b-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="i8b-mounts-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def volume_names(d) -> list[str]:
    status, reply = d.api("GET", "/volumes")
    assert status == 200, reply
    return sorted(v["Name"] for v in reply["Volumes"])


def mounted_under(path: Path) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(path))]


def test_named_volume_data_survives_removal_and_daemon_kill(fresh_daemon):
    """The PostgreSQL pattern: the writer is removed, the daemon is SIGKILLed and restarted, a
    new container on the same volume reads the data back."""
    d = fresh_daemon
    out(d.docker("run", "--name", "writer", "-v", "pgdata:/var/lib/db", "busybox", "sh", "-c",
                 "echo 'row 1' > /var/lib/db/table && sync"))
    out(d.docker("rm", "writer"))
    d.kill9()
    d.start()
    assert "pgdata" in volume_names(d)
    assert out(d.docker("run", "--rm", "-v", "pgdata:/var/lib/db", "busybox", "cat",
                        "/var/lib/db/table")) == "row 1"


def test_running_container_keeps_its_volume_across_daemon_kill(fresh_daemon):
    """A restarted daemon knows the running container still uses its volumes: the volume
    cannot be removed, and a tmpfs volume is unmounted when the container stops."""
    d = fresh_daemon
    out(d.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "scratch"))
    cid = out(d.docker("run", "-d", "-v", "scratch:/s", "busybox", "sh", "-c",
                       "echo hi > /s/f; sleep 300"))
    mountpoint = d.data_root / "volumes" / "scratch" / "_data"
    assert mounted_under(mountpoint)
    d.kill9()
    d.start()
    refused = d.docker("volume", "rm", "scratch")
    assert refused.returncode == 1 and b"volume is in use" in refused.stderr
    assert out(d.docker("exec", cid, "cat", "/s/f")) == "hi"
    out(d.docker("stop", "-t", "0", cid))
    assert not mounted_under(mountpoint)
    out(d.docker("rm", "-v", cid))
    out(d.docker("volume", "rm", "scratch"))
    assert d.leaks(cid) == []


def test_nothing_left_behind(daemon, host_dir):
    """Run, copy out of the stopped container (its volumes and binds are mounted for that),
    remove with -v: no mount, file or process of the container remains, binds keep their data."""
    name = unique("leaks")
    (host_dir / "bound").mkdir()
    out(daemon.docker("run", "--name", name, "-v", "/anon", "-v", f"{host_dir}/bound:/b",
                      "--tmpfs", "/t", "--mount", "type=tmpfs,dst=/mt", "busybox", "sh", "-c",
                      "echo a > /anon/a; echo b > /b/b"))
    view = inspect(daemon, name)
    cid = view["Id"]
    anon = next(m["Name"] for m in view["Mounts"] if m["Destination"] == "/anon")
    assert out(daemon.docker("cp", f"{name}:/anon/a", "-")).startswith("a")
    assert mounted_under(daemon.data_root / "containers" / cid) == []
    assert out(daemon.docker("rm", "-v", name)) == name
    assert daemon.leaks(cid) == []
    assert anon not in volume_names(daemon)
    assert (host_dir / "bound" / "b").read_text() == "b\n"


def test_run_rm_takes_anonymous_volumes_only(daemon):
    named = unique("kept")
    before = volume_names(daemon)
    out(daemon.docker("run", "--rm", "-v", "/anon", "-v", f"{named}:/n", "busybox", "true"))
    assert volume_names(daemon) == sorted([*before, named])
    out(daemon.docker("volume", "rm", named))


def test_tether_cli_flags(daemon, host_dir):
    data, reader = unique("data"), unique("reader")
    vol = unique("vol")
    (host_dir / "f").write_text("host file\n")
    out(daemon.tether("create", "--name", data, "-v", f"{vol}:/v", "-v", "/anon",
                      "-v", f"{host_dir}:/h:ro", "--mount", "type=tmpfs,dst=/mt,tmpfs-size=1m",
                      "--tmpfs", "/t:size=64k", "--read-only", "busybox"))
    view = inspect(daemon, data)
    assert sorted(view["HostConfig"]["Binds"]) == sorted([f"{vol}:/v", f"{host_dir}:/h:ro"])
    assert view["HostConfig"]["Mounts"] == [{"Type": "tmpfs", "Target": "/mt",
                                             "TmpfsOptions": {"SizeBytes": 1048576}}]
    assert view["HostConfig"]["Tmpfs"] == {"/t": "size=64k"}
    assert view["HostConfig"]["ReadonlyRootfs"] is True
    assert view["Config"]["Volumes"] == {"/anon": {}}
    seen = out(daemon.tether("run", "--name", reader, "--volumes-from", f"{data}:ro", "busybox",
                             "sh", "-c", "cat /h/f; touch /v/x 2>&1; ls -d /anon"))
    assert seen.splitlines() == ["host file", "touch: /v/x: Read-only file system", "/anon"]
    anon = next(m["Name"] for m in inspect(daemon, data)["Mounts"] if m["Destination"] == "/anon")
    out(daemon.tether("rm", "-v", reader, data))
    assert anon not in volume_names(daemon) and vol in volume_names(daemon)
    out(daemon.tether("volume", "rm", vol))


@pytest.mark.parametrize("args", [
    ["-v", "/x:/y:ro:extra"], ["-v", ":/x"], ["-v", ""],
    ["--mount", "type=volume,src=v1,dst=/x,bind-propagation=rshared"],
    ["--mount", "type=bind,src=/tmp"], ["--mount", "type=tmpfs,target=/y,tmpfs-size=abc"],
    ["--mount", "type=bind,source=/tmp,target=/x,readonly=maybe"],
    ["-v", "/x:/y:bogus"], ["--mount", "type=bind,source=/nonexist-i8b,target=/x"],
])
def test_tether_cli_errors_read_as_dockers(daemon, args):
    for verb in ("create", "run"):
        theirs = daemon.docker(verb, *args, "busybox")
        ours = daemon.tether(verb, *args, "busybox")
        assert ours.returncode == theirs.returncode != 0
        assert ours.stderr.decode() == theirs.stderr.decode().replace("docker", "tether")


def test_sdk_volumes_and_archives(daemon, host_dir):
    client = daemon.sdk()
    vol = unique("sdk")
    (host_dir / "f").write_text("bound\n")
    container = client.containers.run(
        "busybox", ["sh", "-c", "cat /h/f > /v/copied"], name=unique("sdk"), detach=True,
        volumes={str(host_dir): {"bind": "/h", "mode": "ro"}, vol: {"bind": "/v", "mode": "rw"}})
    try:
        assert container.wait()["StatusCode"] == 0
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("put.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"put\n"))
        assert container.put_archive("/v", buf.getvalue())
        chunks, stat = container.get_archive("/v")
        assert stat["name"] == "v" and stat["mode"] & (1 << 31)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
        assert files == {"v/copied": b"bound\n", "v/put.txt": b"put\n"}
        with pytest.raises(Exception) as err:
            container.put_archive("/h", buf.getvalue())
        assert "mounted volume is marked read-only" in str(err.value)
        assert not (host_dir / "put.txt").exists()
    finally:
        container.remove(v=True)
        client.volumes.get(vol).remove()
    assert vol not in volume_names(daemon)
