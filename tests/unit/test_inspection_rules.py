"""Pure parts of cp / diff / top / stats: in-root path resolution, extraction, overlay changes, ps
and /proc parsing."""
from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tether.engine import archive, changes, procs
from tether.errors import ApiError, BadRequest, NotFound


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (r / "abs").symlink_to("/etc")
    (r / "up").symlink_to("../../..")
    return r


def test_resolution_keeps_symlinks_inside_the_root(root: Path) -> None:
    assert archive.resolve_in_root(root, "/abs/hosts") == root / "etc" / "hosts"
    assert archive.resolve_in_root(root, "/up/etc") == root / "etc"
    assert archive.resolve_in_root(root, "/../../etc/./hosts") == root / "etc" / "hosts"
    assert archive.resolve_in_root(root, "/abs", follow_last=False) == root / "abs"


def test_symlink_loop_is_refused(root: Path) -> None:
    (root / "loop").symlink_to("loop")
    with pytest.raises(BadRequest):
        archive.resolve_in_root(root, "/loop")


def test_stat_header_is_dockers_json(root: Path) -> None:
    _, st = archive.stat_path(root, "/abs", "web")
    decoded = json.loads(base64.b64decode(st.header()))
    assert decoded["name"] == "abs" and decoded["linkTarget"] == "/etc"
    assert decoded["mode"] & (1 << 27) and decoded["mtime"].endswith("Z")
    _, st = archive.stat_path(root, "/etc", "web")
    assert st.mode == (1 << 31) | (os.stat(root / "etc").st_mode & 0o777)
    with pytest.raises(NotFound, match="Could not find the file /nope in container web"):
        archive.stat_path(root, "/nope", "web")


def _tar(entries: list[tuple[str, bytes | None]]) -> io.BytesIO:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = os.getuid(), os.getgid()
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o640
                tar.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def test_extraction_through_an_absolute_symlink_stays_inside(root: Path) -> None:
    archive.extract_tar(root, "/", "web", _tar([("abs/new", b"n"), ("../../../esc", b"e")]))
    assert (root / "etc" / "new").read_bytes() == b"n"
    assert (root / "esc").read_bytes() == b"e"
    assert oct((root / "etc" / "new").stat().st_mode & 0o777) == oct(0o640)


def test_extraction_round_trip_of_a_directory(root: Path) -> None:
    out = io.BytesIO()
    archive.write_tar(root / "etc", "copy", out)
    out.seek(0)
    archive.extract_tar(root, "/", "web", out)
    assert (root / "copy" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_extraction_errors(root: Path) -> None:
    with pytest.raises(NotFound):
        archive.extract_tar(root, "/missing", "web", _tar([]))
    with pytest.raises(BadRequest, match="not a directory"):
        archive.extract_tar(root, "/etc/hosts", "web", _tar([]))
    with pytest.raises(BadRequest, match="cannot overwrite non-directory"):
        archive.extract_tar(root, "/etc", "web", _tar([("hosts", None)]), True)
    archive.extract_tar(root, "/etc", "web", _tar([("hosts", None)]))
    assert (root / "etc" / "hosts").is_dir()


def test_archive_names() -> None:
    assert archive.archive_name("/etc/") == "etc"
    assert archive.archive_name("/etc/.") == "."
    assert archive.archive_name("/etc/hosts") == "hosts"


def test_overlay_changes_order_and_kinds(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "profile").write_text("x")
    (lower / "same").mkdir()
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "profile").write_text("y")
    (upper / "etc" / "added").write_text("z")
    (upper / "new" / "dir").mkdir(parents=True)
    (upper / "same").mkdir()
    st = (lower / "same").stat()
    os.chmod(upper / "same", st.st_mode)
    os.utime(upper / "same", ns=(st.st_atime_ns, st.st_mtime_ns))
    found = [(c.kind, c.path) for c in changes.overlay_changes(upper, [lower])]
    assert found == [(0, "/etc"), (1, "/etc/added"), (0, "/etc/profile"), (1, "/new"),
                     (1, "/new/dir")]
    assert changes.overlay_changes(tmp_path / "none", [lower]) == []


def test_parse_ps_keeps_container_pids_and_joins_the_command() -> None:
    output = ("UID   PID  PPID  C STIME TTY   TIME CMD\n"
              "root    1     0  0 10:00 ?  00:00:01 /sbin/init\n"
              "root  4242  4200  0 10:01 ?  00:00:00 sleep 300 now\n")
    top = procs.parse_ps(output, [4242])
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top["Processes"] == [["root", "4242", "4200", "0", "10:01", "?", "00:00:00",
                                 "sleep 300 now"]]
    with pytest.raises(ApiError, match="Couldn't find PID field"):
        procs.parse_ps("USER CMD\n", [1])


def test_proc_parsers() -> None:
    stat = "cpu  100 0 50 800 10 0 5 7 0 0\ncpu0 50 0 25 400 5 0 2 0 0 0\ncpu1 1 1 1 1 1 1 1 0 0 0\n"
    assert procs.system_cpu_usage(stat) == 965 * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert procs.online_cpus(stat) == 2
    assert procs.machine_memory("MemTotal:       2000 kB\n") == 2_048_000
    dev = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed "
           "multicast|bytes packets errs drop fifo colls carrier compressed\n"
           "    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n"
           "  eth0: 500 5 1 2 0 0 0 0 300 3 0 1 0 0 0 0\n")
    assert procs.parse_net_dev(dev) == {"eth0": {
        "rx_bytes": 500, "rx_packets": 5, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 300, "tx_packets": 3, "tx_errors": 0, "tx_dropped": 1}}


def test_empty_stats_for_a_stopped_container() -> None:
    stats = procs.empty_stats("abc", "/web")
    assert stats["read"] == procs.ZERO_TIME and stats["name"] == "/web"
    assert stats["blkio_stats"]["io_service_bytes_recursive"] is None
