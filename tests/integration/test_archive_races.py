"""`docker cp` against a container that races it, and `docker cp` into `/`.

A container controls its own files while the daemon copies into or out of it: a static C
program (cbin) swaps a directory with a symlink naming a host directory by its host path,
with renameat2(RENAME_EXCHANGE), as fast as it can or once at a chosen moment. Whatever the
timing, nothing may be written, chmod'ed, touched or read on the host side of that symlink:
the daemon resolves every path inside the container's root (runtime/rootfd.py).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import docker.errors
import pytest
import requests

from reference import ReferenceEngine
from test_mounts import host_dir  # noqa: F401 (a fixture: the host dir the symlink names)

pytestmark = pytest.mark.integration

RACE_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* race A B STOP: exchange A and B until the file STOP exists.
   race A B WATCH REPORT: wait until WATCH has data, exchange A and B once, and write to REPORT
   the size WATCH had just before the exchange. */
int main(int argc, char **argv) {
    if (argc == 4) {
        while (access(argv[3], F_OK) != 0)
            for (int i = 0; i < 1000; i++)
                syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2);
        return 0;
    }
    struct stat st;
    while (stat(argv[3], &st) != 0 || st.st_size == 0)
        usleep(20);
    syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2);
    FILE *report = fopen(argv[4], "w");
    fprintf(report, "%lld\n", (long long)st.st_size);
    fclose(report);
    return 0;
}
"""
BIG = 96 << 20  # the first member of the single-swap tar: long enough to swap while it is written
ENTRIES = 3000


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def racer(daemon, cbin) -> Iterator[str]:
    """A running busybox container with the race program at /race; removed afterwards."""
    name = unique("race-")
    binary = cbin.build("race", RACE_C)
    r = daemon.docker("run", "-d", "--name", name, "-v", f"{binary}:/race:ro", "busybox",
                      "sleep", "100000")
    assert r.returncode == 0, r.stderr
    try:
        yield name
    finally:
        daemon.docker("rm", "-f", name)


def _exec(daemon, name: str, script: str, detach: bool = False) -> str:
    r = daemon.docker("exec", *(["-d"] if detach else []), name, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def _many_entries_tar() -> bytes:
    """ENTRIES small files and a directory, every one with a mode and an mtime to set."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        sub = tarfile.TarInfo("sub")
        sub.type, sub.mode, sub.mtime = tarfile.DIRTYPE, 0o777, 1000
        tar.addfile(sub)
        for i in range(ENTRIES):
            info = tarfile.TarInfo(f"f{i:04d}" if i % 2 else f"sub/f{i:04d}")
            info.size, info.mode, info.mtime = 2, 0o777, 1000
            tar.addfile(info, io.BytesIO(b"x\n"))
    return out.getvalue()


def _snapshot(path: Path) -> list[tuple]:
    """Everything under `path` and `path` itself: names, modes, mtimes, contents."""
    seen = [("", os.lstat(path).st_mode, os.lstat(path).st_mtime_ns)]
    for entry in sorted(path.rglob("*")):
        st = entry.lstat()
        seen.append((str(entry.relative_to(path)), st.st_mode, st.st_mtime_ns,
                     entry.read_bytes() if stat.S_ISREG(st.st_mode) else b""))
    return seen


def test_put_while_swapping_never_writes_to_the_host(daemon, racer, host_dir) -> None:
    """40 PUTs of a 3000-entry tar into /w while /w and /wl -> <host dir> are exchanged as fast
    as the container can: the host directory stays empty and untouched, the files land in the
    container (in /w, or in the container's own <host dir> path when /w was the link)."""
    (host_dir / "keep").write_text("host\n")
    os.chmod(host_dir / "keep", 0o600)
    before = _snapshot(host_dir)
    _exec(daemon, racer, f"mkdir -p /w {host_dir} && ln -s {host_dir} /wl")
    _exec(daemon, racer, "exec /race /w /wl /stop", detach=True)
    data = _many_entries_tar()
    api = daemon.sdk().api
    outcomes = []
    try:
        for _ in range(40):
            try:
                outcomes.append(api.put_archive(racer, "/w", data))
            except docker.errors.APIError as exc:  # /w was the link to a missing dir: refused
                outcomes.append(exc.status_code)
    finally:
        _exec(daemon, racer, "touch /stop")
    assert _snapshot(host_dir) == before
    assert True in outcomes, outcomes
    landed = _exec(daemon, racer, f"ls /w /wl/ {host_dir} 2>/dev/null | grep -c '^f[0-9]'")
    assert int(landed) > 0


def _single_swap_tar() -> bytes:
    """A big file `big` first (the container swaps while it is written), then another file;
    every member with a mode and an mtime the daemon sets after writing it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        big = tarfile.TarInfo("big")
        big.size, big.mode, big.mtime = BIG, 0o777, 1000
        tar.addfile(big, io.BytesIO(bytes(BIG)))
        after = tarfile.TarInfo("after")
        after.size, after.mode, after.mtime = 2, 0o777, 1000
        tar.addfile(after, io.BytesIO(b"a\n"))
    return out.getvalue()


def test_one_swap_mid_copy_leaves_the_host_file_alone(daemon, racer, host_dir) -> None:
    """/wl names the host directory, which holds a file `big`; the tar brings a big file `big`
    into /w, and the container exchanges /w and /wl once that file has data, so /w/big then
    names the host's file. The host file keeps its mode, mtime and contents, and the copy's
    `big` is the container's (now at /wl/big)."""
    (host_dir / "big").write_text("host\n")
    os.chmod(host_dir / "big", 0o600)
    os.utime(host_dir / "big", ns=(2_000_000_000, 2_000_000_000))
    before = _snapshot(host_dir)
    for _ in range(5):
        _exec(daemon, racer, f"rm -rf /w /wl /report && mkdir /w && ln -s {host_dir} /wl")
        _exec(daemon, racer, "exec /race /w /wl /w/big /report", detach=True)
        try:
            daemon.sdk().api.put_archive(racer, "/w", _single_swap_tar())
        except docker.errors.APIError:
            pass  # after the swap, /w leads to a directory the container does not have
        size = _exec(daemon, racer, "for i in $(seq 100); do [ -s /report ] && break; "
                                    "sleep 0.1; done; cat /report")
        assert _snapshot(host_dir) == before
        if int(size) < BIG:  # the swap came while the copy ran: the case this test is about
            break
    else:
        pytest.fail("the container never swapped while the big file was being written")
    inside = _exec(daemon, racer, "stat -c '%s %a %Y' /wl/big")
    assert inside.split() == [str(BIG), "777", "1000"]


def test_get_while_swapping_never_reads_the_host(daemon, racer, host_dir) -> None:
    """GET /a while /a/w (a directory with a file `secret`) and /a/wl -> <host dir> (with its
    own `secret`) are exchanged: no tar ever holds the host's secret."""
    (host_dir / "secret").write_text("HOST-SECRET\n")
    _exec(daemon, racer, f"mkdir -p /a/w && echo inside > /a/w/secret && "
                         f"for i in $(seq 200); do echo $i > /a/w/f$i; done && ln -s {host_dir} /a/wl")
    _exec(daemon, racer, "exec /race /a/w /a/wl /stop", detach=True)
    api = daemon.sdk().api
    seen_inside = 0
    try:
        for _ in range(40):
            stream, _ = api.get_archive(racer, "/a")
            data = bytearray()
            with contextlib.suppress(requests.exceptions.ChunkedEncodingError):
                for chunk in stream:  # a cut tar is checked as far as it came
                    data += chunk
            leaked = b"HOST-SECRET" in data
            assert not leaked, "a host file was read into the tar"
            with contextlib.suppress(tarfile.TarError):
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    seen_inside += sum(tar.extractfile(m).read() == b"inside\n"
                                       for m in tar if m.isreg())
    finally:
        _exec(daemon, racer, "touch /stop")
    assert seen_inside > 0


def test_commit_while_swapping_never_reads_the_host(daemon, racer, host_dir) -> None:
    """docker commit of the same racing container (its upper dir is walked while it changes):
    no committed layer ever holds the host's secret."""
    (host_dir / "secret").write_text("HOST-SECRET\n")
    _exec(daemon, racer, f"mkdir -p /a/w && echo inside > /a/w/secret && "
                         f"for i in $(seq 200); do echo $i > /a/w/f$i; done && ln -s {host_dir} /a/wl")
    _exec(daemon, racer, "exec /race /a/w /a/wl /stop", detach=True)
    api = daemon.sdk().api
    images: list[str] = []
    seen_inside = 0
    try:
        for _ in range(20):
            images.append(api.commit(racer)["Id"])
            saved = b"".join(api.get_image(images[-1]))
            leaked = b"HOST-SECRET" in saved
            assert not leaked, "a host file was committed"
            seen_inside += b"inside\n" in saved  # unless both names were links when walked
    finally:
        _exec(daemon, racer, "touch /stop")
        for image in images:
            api.remove_image(image, force=True)
    assert seen_inside > 0


def test_diff_while_swapping_never_lists_the_host(daemon, racer, host_dir) -> None:
    """docker diff of the racing container (its upper dir listed while it changes): no path
    it reports comes from the host directory."""
    (host_dir / "host-only-name").write_text("x\n")
    _exec(daemon, racer, f"mkdir -p /a/w && for i in $(seq 200); do echo $i > /a/w/f$i; done "
                         f"&& ln -s {host_dir} /a/wl")
    _exec(daemon, racer, "exec /race /a/w /a/wl /stop", detach=True)
    try:
        for _ in range(40):
            found = daemon.sdk().api.diff(racer)
            assert not [c["Path"] for c in found if "host-only-name" in c["Path"]]
    finally:
        _exec(daemon, racer, "touch /stop")


# ---- docker cp into and out of `/` -------------------------------------------------------

@pytest.fixture(scope="module")
def engines(daemon) -> Iterator[dict[str, tuple]]:
    """On Docker 20.10 and on tetherd: a running busybox container, a created one (its name
    with `-created`), and a host directory holding a file and a directory to copy."""
    ref = ReferenceEngine("i11-cproot")
    tag = uuid.uuid4().hex[:6]
    made: dict[str, tuple] = {}
    try:
        ref.start()
        for label, host in (("docker", ref.host), ("tether", daemon.host)):
            work = Path(tempfile.mkdtemp(prefix=f"tether-cproot-{label}-", dir="/var/tmp"))
            made[label] = (host, f"cproot-{tag}-{label}", work)
            (work / "file.txt").write_text("file\n")
            (work / "tree" / "sub").mkdir(parents=True)
            (work / "tree" / "sub" / "g").write_text("g\n")
            r = _docker(host, "run", "-d", "--name", made[label][1], "busybox", "sleep", "100000")
            assert r.returncode == 0, r.stderr
            r = _docker(host, "create", "--name", f"{made[label][1]}-created", "busybox")
            assert r.returncode == 0, r.stderr
        yield made
    finally:
        for host, name, work in made.values():
            _docker(host, "rm", "-f", name, f"{name}-created")
            shutil.rmtree(work, ignore_errors=True)
        ref.stop()


def _docker(host: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, timeout=60, cwd=cwd,
                          env={**os.environ, "DOCKER_HOST": host})


def _both(engines: dict[str, tuple], *args: str, suffix: str = "") -> dict[str, tuple]:
    """Run the docker CLI with `args` ({c}: the container, its name + `suffix`) on both
    engines, in the host dir."""
    seen = {}
    for label, (host, base, work) in engines.items():
        name = base + suffix
        r = _docker(host, *[a.replace("{c}", name) for a in args], cwd=work)
        seen[label] = (r.returncode, r.stdout.decode().replace(name, "<c>"),
                       r.stderr.decode().replace(name, "<c>").replace(str(work), "<dir>"))
    return seen


@pytest.mark.parametrize("state", ["running", "created"])
@pytest.mark.parametrize("source, copied, content", [
    ("file.txt", "file.txt", "file.txt"), ("tree", "tree", "tree/sub/g"), ("tree/.", "sub", "sub/g")])
def test_cp_into_the_root_and_back(engines, state: str, source: str, copied: str,
                                   content: str) -> None:
    """`docker cp X ctr:/` (a file, a directory, a directory's contents) and back out of `/`,
    on a running and on a created container: both engines copy, and the container and the host
    hold the same afterwards."""
    suffix = "" if state == "running" else "-created"
    try:
        into = _both(engines, "cp", source, "{c}:/", suffix=suffix)
        assert into["tether"] == into["docker"] and into["docker"][0] == 0, into
        if state == "running":
            listing = _both(engines, "exec", "{c}", "sh", "-c", f"find /{copied} | sort; "
                                                               f"cat /{content}")
            assert listing["tether"] == listing["docker"] and listing["docker"][0] == 0, listing
        out = _both(engines, "cp", f"{{c}}:/{copied}", f"back-{copied}", suffix=suffix)
        assert out["tether"] == out["docker"] and out["docker"][0] == 0, out
        trees = {label: (sorted(str(p.relative_to(work)) for p in (work / f"back-{copied}").rglob("*")),
                         (work / f"back-{content}").read_text())
                 for label, (_, _, work) in engines.items()}
        assert trees["tether"] == trees["docker"], trees
    finally:
        if state == "running":
            _both(engines, "exec", "{c}", "rm", "-rf", f"/{copied}")
        for _, _, work in engines.values():
            shutil.rmtree(work / f"back-{copied}", ignore_errors=True)
            (work / f"back-{copied}").unlink(missing_ok=True)


def test_stat_of_the_root_is_a_directory(engines) -> None:
    """HEAD /containers/{id}/archive?path=/ : the root directory, not /proc/<pid>/root's link
    (the docker CLI decides from it how `cp x ctr:/` copies)."""
    seen = {}
    for label, (host, name, _) in engines.items():
        client = docker.APIClient(base_url=host, timeout=30)
        try:
            resp = client.head(client._url("/containers/{0}/archive", name), params={"path": "/"})
        finally:
            client.close()
        assert resp.status_code == 200, (label, resp.status_code)
        st = json.loads(base64.b64decode(resp.headers["X-Docker-Container-Path-Stat"]))
        seen[label] = (st["name"], st["linkTarget"], st["mode"] & ((1 << 31) | (1 << 27)))
    assert seen["tether"] == seen["docker"] == ("/", "", 1 << 31)
