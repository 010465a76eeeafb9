"""Pure parts of cp / diff / top / stats: in-root path resolution, extraction, overlay changes, ps
and /proc parsing."""
from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from tether.engine import archive, changes, procs
from tether.rules.errors import ApiError, BadRequest, NotFound
from tether.runtime.rootfd import Root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (r / "abs").symlink_to("/etc")
    (r / "up").symlink_to("../../..")
    return r


@pytest.fixture
def root(tree: Path) -> Iterator[Root]:
    with Root.open(tree) as r:
        yield r


def test_symlink_loop_is_refused(tree: Path, root: Root) -> None:
    (tree / "loop").symlink_to("loop")
    with pytest.raises(BadRequest, match="too many symlinks"):
        archive.stat_path(root, "/loop/x", "web")
    with pytest.raises(BadRequest, match="too many symlinks"):
        archive.stat_path(root, "/loop", "web")  # a link: its target is resolved for the header
    with pytest.raises(BadRequest, match="too many symlinks"):
        archive.extract_tar(root, "/loop", "web", _tar([]))


def test_stat_header_is_dockers_json(tree: Path, root: Root) -> None:
    st = archive.stat_path(root, "/abs", "web")
    decoded = json.loads(base64.b64decode(st.header()))
    assert decoded["name"] == "abs" and decoded["linkTarget"] == "/etc"
    assert decoded["mode"] & (1 << 27) and decoded["mtime"].endswith("Z")
    st = archive.stat_path(root, "/etc", "web")
    assert st.mode == (1 << 31) | (os.stat(tree / "etc").st_mode & 0o777)
    with pytest.raises(NotFound, match="Could not find the file /nope in container web"):
        archive.stat_path(root, "/nope", "web")


def test_the_root_itself_is_a_directory_named_slash(root: Root) -> None:
    """`docker cp x ctr:/` stats `/` first: the root, never the link a /proc/<pid>/root is."""
    st = archive.stat_path(root, "/", "web")
    assert (st.name, st.link_target) == ("/", "") and st.mode & (1 << 31)


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


def test_extraction_through_an_absolute_symlink_stays_inside(tree: Path, root: Root) -> None:
    archive.extract_tar(root, "/", "web", _tar([("abs/new", b"n"), ("../../../esc", b"e")]))
    assert (tree / "etc" / "new").read_bytes() == b"n"
    assert (tree / "esc").read_bytes() == b"e"
    assert oct((tree / "etc" / "new").stat().st_mode & 0o777) == oct(0o640)


def test_extraction_into_a_link_to_the_host_stays_inside(tmp_path: Path, tree: Path,
                                                          root: Root) -> None:
    """A destination, or a member's parent, that is a symlink naming a host directory by its
    host path leads to that path inside the root; the host directory is not touched."""
    host = tmp_path / "host"
    host.mkdir()
    (tree / "hostlink").symlink_to(host)
    with pytest.raises(ApiError, match="no such file or directory"):  # dangling inside, as Docker
        archive.extract_tar(root, "/", "web", _tar([("hostlink/a", b"a")]))
    with pytest.raises(NotFound):
        archive.extract_tar(root, "/hostlink", "web", _tar([("b", b"b")]))
    (tree / str(host).lstrip("/")).mkdir(parents=True)
    archive.extract_tar(root, "/", "web", _tar([("hostlink/a", b"a")]))
    archive.extract_tar(root, "/hostlink", "web", _tar([("b", b"b")]))
    assert list(host.iterdir()) == []
    assert sorted(p.name for p in (tree / str(host).lstrip("/")).iterdir()) == ["a", "b"]


def test_attributes_of_a_link_member_stay_on_the_link(tmp_path: Path, tree: Path,
                                                      root: Root) -> None:
    victim = tmp_path / "victim"
    victim.write_text("v")
    before = victim.stat()
    (tree / "etc" / "v").symlink_to(victim)
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("v")
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, str(victim), 0o777, 5
        tar.addfile(info)
    data.seek(0)
    archive.extract_tar(root, "/etc", "web", data)
    after = victim.stat()
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)


def test_extraction_round_trip_of_a_directory(tree: Path, root: Root) -> None:
    out = io.BytesIO()
    archive.write_tar(root, "/etc", "copy", out)
    out.seek(0)
    archive.extract_tar(root, "/", "web", out)
    assert (tree / "copy" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_a_tar_of_a_link_is_the_link(root: Root) -> None:
    out = io.BytesIO()
    archive.write_tar(root, "/abs", "abs", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        [member] = tar.getmembers()
    assert member.issym() and member.linkname == "/etc"


def test_extraction_errors(tree: Path, root: Root) -> None:
    with pytest.raises(NotFound):
        archive.extract_tar(root, "/missing", "web", _tar([]))
    with pytest.raises(BadRequest, match="not a directory"):
        archive.extract_tar(root, "/etc/hosts", "web", _tar([]))
    with pytest.raises(BadRequest, match="cannot overwrite non-directory"):
        archive.extract_tar(root, "/etc", "web", _tar([("hosts", None)]), True)
    archive.extract_tar(root, "/etc", "web", _tar([("hosts", None)]))
    assert (tree / "etc" / "hosts").is_dir()


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
