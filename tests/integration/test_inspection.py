"""docker cp / diff / top / stats --no-stream with the stock docker CLI against tetherd."""
from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from harness import Daemon


@pytest.fixture
def box(daemon: Daemon) -> Iterator[str]:
    """A running busybox container with a unique name, removed afterwards."""
    name = "insp-" + uuid.uuid4().hex[:8]
    result = daemon.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert result.returncode == 0, result.stderr
    try:
        yield name
    finally:
        daemon.docker("rm", "-f", name)


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_cp_file_both_ways(daemon: Daemon, box: str, tmp_path: Path) -> None:
    src = tmp_path / "hello.txt"
    src.write_text("hi there\n")
    _ok(daemon.docker("cp", str(src), f"{box}:/tmp/"))
    assert _ok(daemon.docker("exec", box, "cat", "/tmp/hello.txt")) == "hi there\n"
    _ok(daemon.docker("cp", f"{box}:/etc/hostname", str(tmp_path / "hn")))
    assert (tmp_path / "hn").read_text().strip() == _ok(daemon.docker("exec", box, "hostname")).strip()


def test_cp_directory_both_ways(daemon: Daemon, box: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a").write_text("A")
    (tree / "link").symlink_to("sub/a")
    _ok(daemon.docker("cp", str(tree), f"{box}:/data"))
    assert _ok(daemon.docker("exec", box, "cat", "/data/link")) == "A"
    _ok(daemon.docker("exec", box, "sh", "-c", "echo B > /data/sub/b"))
    out = tmp_path / "back"
    _ok(daemon.docker("cp", f"{box}:/data", str(out)))
    assert (out / "sub" / "b").read_text() == "B\n"
    assert (out / "link").is_symlink() and (out / "link").read_text() == "A"


def test_cp_missing_path_is_docker_error(daemon: Daemon, box: str, tmp_path: Path) -> None:
    result = daemon.docker("cp", f"{box}:/nope", str(tmp_path))
    assert result.returncode == 1
    assert f"Could not find the file /nope in container {box}" in result.stderr.decode()


def test_cp_into_stopped_container(daemon: Daemon, tmp_path: Path) -> None:
    name = "insp-stopped-" + uuid.uuid4().hex[:8]
    _ok(daemon.docker("create", "--name", name, "busybox", "cat", "/in.txt"))
    try:
        src = tmp_path / "in.txt"
        src.write_text("offline\n")
        _ok(daemon.docker("cp", str(src), f"{name}:/in.txt"))
        assert _ok(daemon.docker("start", "-a", name)) == "offline\n"
        _ok(daemon.docker("cp", f"{name}:/in.txt", str(tmp_path / "out.txt")))
        assert (tmp_path / "out.txt").read_text() == "offline\n"
    finally:
        daemon.docker("rm", "-f", name)


def test_archive_extraction_stays_in_root(daemon: Daemon, box: str) -> None:
    """A symlink pointing at / leads to the container's root; `..` stops at the extraction dir."""
    _ok(daemon.docker("exec", box, "sh", "-c", "mkdir /jail && ln -s / /jail/up"))
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        for name in ("up/escaped", "../../dotdot"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
    cid = _ok(daemon.docker("inspect", "-f", "{{.Id}}", box)).strip()
    status, body = _put(daemon, cid, "/jail", payload.getvalue())
    assert status == 200, body
    assert _ok(daemon.docker("exec", box, "cat", "/escaped", "/jail/dotdot")) == "x\nx\n"
    assert not Path("/escaped").exists() and not Path("/dotdot").exists()
    assert _ok(daemon.docker("exec", box, "ls", "/")).split().count("dotdot") == 0


def _put(daemon: Daemon, cid: str, path: str, data: bytes) -> tuple[int, bytes]:
    from harness import UnixHTTPConnection
    conn = UnixHTTPConnection(daemon.sock, 30)
    try:
        conn.request("PUT", f"/containers/{cid}/archive?path={path}", data,
                     {"Content-Type": "application/x-tar"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_diff_lists_changes_in_docker_order(daemon: Daemon, box: str) -> None:
    _ok(daemon.docker("exec", box, "sh", "-c",
                      "mkdir -p /new/dir && touch /new/dir/f && rm /bin/zcat && echo >> /etc/profile"))
    lines = _ok(daemon.docker("diff", box)).splitlines()
    for expected in ("A /new", "A /new/dir", "A /new/dir/f", "C /bin", "D /bin/zcat", "C /etc"):
        assert expected in lines, lines
    assert lines.index("A /new") < lines.index("A /new/dir") < lines.index("A /new/dir/f")
    assert lines.index("C /bin") < lines.index("D /bin/zcat")


def test_top_shows_the_command(daemon: Daemon, box: str) -> None:
    lines = _ok(daemon.docker("top", box)).splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any(line.endswith("sleep 300") for line in lines[1:]), lines
    custom = _ok(daemon.docker("top", box, "-o", "pid,args")).splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and custom[1].endswith("sleep 300")


def test_top_of_stopped_container_is_409(daemon: Daemon) -> None:
    name = "insp-top-" + uuid.uuid4().hex[:8]
    _ok(daemon.docker("create", "--name", name, "busybox", "true"))
    try:
        result = daemon.docker("top", name)
        assert result.returncode == 1 and "is not running" in result.stderr.decode()
    finally:
        daemon.docker("rm", "-f", name)


def test_stats_no_stream_row(daemon: Daemon, box: str) -> None:
    out = _ok(daemon.docker("stats", "--no-stream", box)).splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    row = out[1].split()
    assert row[1] == box
    assert row[2].endswith("%") and row[-1] == "1"  # CPU %, PIDS: just `sleep`
    assert "MiB" in out[1] or "KiB" in out[1]
    status, stats = daemon.api("GET", f"/containers/{box}/stats?stream=false")
    assert status == 200
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["precpu_stats"]["system_cpu_usage"] < stats["cpu_stats"]["system_cpu_usage"]
    assert stats["memory_stats"]["usage"] > 0 and "eth0" in stats["networks"]
    assert stats["name"] == "/" + box
