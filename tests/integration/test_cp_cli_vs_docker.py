"""`tether cp` side by side with `docker cp`: three runners copy the same things.

- "ref": the docker CLI against Docker 20.10 (the reference engine),
- "docker": the docker CLI against tetherd,
- "tether": the tether CLI against tetherd.

Each runner has a container of its own with the same files (same modes and mtimes) and a fresh
host directory with the same files, so a case's outputs, the host tree it leaves and the
container tree it leaves can be compared whole, after the paths that must differ (the host
directory, the container names, the program's name) are normalised.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from harness import BIN
from reference import ReferenceEngine

pytestmark = pytest.mark.integration

RUNNERS = ("ref", "docker", "tether")
STAMP = 1577934245  # 2020-01-02 03:04:05 UTC, what every prepared file's mtime is
TOUCH = "touch -h -d '2020-01-02 03:04:05'"
SETUP = ("rm -rf /d /dl /w /wl && mkdir -p /d/sub /w/exist && echo hello > /d/f && "
         "chmod 640 /d/f && echo deep > /d/sub/g && ln /d/f /d/hard && ln -s f /d/lnk && "
         "ln -s /d /dl && ln -s /w /wl && echo file > /w/file && ln -s /nosuch /d/broken && "
         f"{TOUCH} /d/f /d/sub/g /d/lnk /d/broken /dl /wl /w/file /w/exist /d/sub /d /w")
TAG = uuid.uuid4().hex[:6]


class Runner:
    """One CLI against one engine, with its own container and host directory."""

    def __init__(self, name: str, host: str) -> None:
        self.name = name
        self.host = host
        self.container = f"i8c-{TAG}-{name}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"i8c-cp-{name}-", dir="/var/tmp"))

    def docker(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        """The docker CLI against this runner's engine (set-up and inspection)."""
        return subprocess.run(["docker", *args], input=input, capture_output=True, timeout=60,
                              env={**os.environ, "DOCKER_HOST": self.host})

    def cp(self, *args: str, input: bytes | None = None,
           stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess:
        """The CLI under test, run in this runner's host directory."""
        prog = ([str(BIN / "tether"), "-H", self.host] if self.name == "tether"
                else ["docker"])
        return subprocess.run([*prog, "cp", *args], input=input, stdout=stdout,
                              stderr=subprocess.PIPE, timeout=60, cwd=self.dir,
                              env={**os.environ, "DOCKER_HOST": self.host})

    def reset(self) -> None:
        """The same host files and container files before every case."""
        shutil.rmtree(self.dir)
        self.dir.mkdir()
        _host_tree(self.dir)
        r = self.docker("exec", self.container, "sh", "-c", SETUP)
        assert r.returncode == 0, r.stderr


def _host_tree(root: Path) -> None:
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a").write_text("A\n")
    (root / "src" / "a").chmod(0o600)
    (root / "src" / "sub" / "b").write_text("B\n")
    os.symlink("a", root / "src" / "la")
    os.link(root / "src" / "a", root / "src" / "ha")
    (root / "top.txt").write_text("top\n")
    os.symlink("src", root / "srcl")
    os.symlink("src/a", root / "filel")
    (root / "exist_dir").mkdir()
    (root / "exist_file").write_text("old\n")
    (root / "conflict" / "f").mkdir(parents=True)
    os.symlink("exist_dir", root / "link_dir")
    os.symlink("/nowhere", root / "dangling")
    # names that fit USTAR only split into prefix and name, and ones that need PAX records
    (root / "names" / ("d" * 60)).mkdir(parents=True)
    (root / "names" / ("d" * 60) / ("f" * 80)).write_text("split\n")
    (root / "names" / ("n" * 120)).write_text("long\n")
    (root / "names" / "\u00fcn\u00ef.txt").write_text("utf-8\n")
    os.symlink("t" * 130, root / "names" / "longlink")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (STAMP, STAMP), follow_symlinks=False)


def _when(mtime: float) -> object:
    """A copied mtime is compared exactly; one the copy set to "now" only as being recent."""
    return int(mtime) if mtime < time.time() - 3600 else "recent"


def host_view(root: Path) -> list[tuple]:
    """Every entry under `root`: name, type and mode, content or link target, mtime."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            detail: object = ""
            if stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                detail = path.read_bytes()
            when = "" if stat.S_ISLNK(st.st_mode) else _when(st.st_mtime)
            entries.append((str(path.relative_to(root)), oct(st.st_mode), detail, when))
    return sorted(entries)


def container_view(runner: Runner) -> list[tuple]:
    """The container's /w as the engine archives it (read with the docker CLI)."""
    r = runner.docker("cp", f"{runner.container}:/w", "-")
    assert r.returncode == 0, r.stderr
    entries = []
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        for m in tar:
            data = tar.extractfile(m).read() if m.isreg() else m.linkname
            when = _when(m.mtime) if m.isreg() else ""
            # Go's writer keeps the file type bits in the mode field, Python's does not
            entries.append((m.name.rstrip("/"), m.type, oct(m.mode & 0o7777), data, when))
    return sorted(entries)


def normalise(runner: Runner, text: bytes) -> str:
    out = text.decode(errors="replace").replace(str(runner.dir), "<dir>")
    out = out.replace(runner.container, "<c>").replace("tether cp", "docker cp")
    out = re.sub(r"^tether:", "docker:", out, flags=re.M)
    return "".join(line for line in out.splitlines(True) if not line.startswith('time="'))


def without_sizes(seen: tuple) -> tuple:
    """The engines' archives differ in padding, so the sizes copied from a container do (the
    size of what the CLI itself sends is compared)."""
    rc, out, err, *rest = seen
    return (rc, out, re.sub(r"Successfully copied \S+ to", "Successfully copied <size> to", err),
            *rest)


@pytest.fixture(scope="module")
def runners(daemon) -> Iterator[dict[str, Runner]]:
    ref = ReferenceEngine("i8c-cp")
    made = {"ref": Runner("ref", ref.host), "docker": Runner("docker", daemon.host),
            "tether": Runner("tether", daemon.host)}
    try:
        ref.start()
        for runner in made.values():
            r = runner.docker("run", "-d", "--name", runner.container, "busybox",
                              "sleep", "100000")
            assert r.returncode == 0, r.stderr
        yield made
    finally:
        for runner in made.values():
            runner.docker("rm", "-f", runner.container)
            shutil.rmtree(runner.dir, ignore_errors=True)
        ref.stop()


def run_case(runners: dict[str, Runner], args: list[str],
             stdin: bytes | None = None) -> dict[str, tuple]:
    """Run `cp` with `args` ({c} is the runner's container) on every runner; return what each
    printed and left behind."""
    seen = {}
    for name, runner in runners.items():
        runner.reset()
        argv = [a.replace("{c}", runner.container) for a in args]
        r = runner.cp(*argv, input=stdin)
        seen[name] = (r.returncode, r.stdout if "-" == argv[-1] else normalise(runner, r.stdout),
                      normalise(runner, r.stderr), host_view(runner.dir), container_view(runner))
    return seen


def _tar_listing(data: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sorted((m.name, m.type, oct(m.mode & 0o7777), m.linkname,
                       tar.extractfile(m).read() if m.isreg() else b"") for m in tar)


FROM_CONTAINER = [
    ["{c}:/d", "out"], ["{c}:/d", "exist_dir"], ["{c}:/d/", "out"], ["{c}:/d/.", "exist_dir"],
    ["{c}:/d/.", "out"], ["{c}:/d/f", "out"], ["{c}:/d/f", "exist_dir"],
    ["{c}:/d/f", "exist_dir/"], ["{c}:/d/f", "exist_file"], ["{c}:/d/f", "out/"],
    ["{c}:/d", "exist_file"], ["{c}:/d/lnk", "out"], ["-L", "{c}:/d/lnk", "out"],
    ["-L", "{c}:/d/lnk", "exist_dir"], ["-L", "{c}:/dl", "out"], ["{c}:/dl", "out"],
    ["{c}:/nosuch", "out"], ["i8c-nosuch:/x", "out"], ["{c}:/d/f", "missing/x"],
    ["{c}:/d/f", "exist_file/x"], ["{c}:/d/f", "link_dir"], ["{c}:/d/f", "conflict"],
    ["{c}:/d/sub/g", "./a:b"], ["-q=false", "{c}:/d/f", "out"], ["-q=false", "{c}:/d", "out"],
    ["--quiet=false", "{c}:/d/f", "out/"], ["-q=0", "-L", "{c}:/dl", "exist_dir"],
    ["{c}:d/sub", "out"], ["{c}:/d/broken", "out"], ["-L", "{c}:/d/broken", "out"], ["{c}:/d/f", "/dev/null"],
]


@pytest.mark.parametrize("args", FROM_CONTAINER, ids=" ".join)
def test_copy_from_container(runners, args: list[str]) -> None:
    seen = run_case(runners, args)
    assert seen["tether"] == seen["docker"]
    assert without_sizes(seen["tether"]) == without_sizes(seen["ref"])


TO_CONTAINER = [
    ["top.txt", "{c}:/w"], ["top.txt", "{c}:/w/new.txt"], ["top.txt", "{c}:/w/newdir/"],
    ["src", "{c}:/w"], ["src", "{c}:/w/srcnew"], ["src", "{c}:/w/file"],
    ["top.txt", "{c}:/w/file"], ["nosuch", "{c}:/w"], ["top.txt/", "{c}:/w"],
    ["srcl", "{c}:/w"], ["-L", "srcl", "{c}:/w/srcl2"], ["-L", "filel", "{c}:/w"],
    ["filel", "{c}:/w/"], ["top.txt", "{c}:/nosuchdir/x"], ["top.txt", "{c}:/wl"],
    ["src/.", "{c}:/w/dot"], ["src/.", "{c}:/w/exist"], ["src/", "{c}:/w/slash"],
    ["-a", "top.txt", "{c}:/w/a.txt"], ["top.txt", "i8c-nosuch:/x"],
    ["-q=false", "src", "{c}:/w/"], ["-q=false", "top.txt", "{c}:/wl"],
    ["--quiet=false", "src", "{c}:/w/file"], ["-q=false", "top.txt", "{c}:/nosuchdir/x"],
    ["-L", "dangling", "{c}:/w"], ["dangling", "{c}:/w"], ["top.txt", "{c}:w/rel.txt"],
    ["-q=false", "names", "{c}:/w"], ["-q=false", "names", "{c}:/w/renamed" + "r" * 100],
]


@pytest.mark.parametrize("args", TO_CONTAINER, ids=" ".join)
def test_copy_to_container(runners, args: list[str]) -> None:
    seen = run_case(runners, args)
    assert seen["tether"] == seen["docker"]
    assert seen["tether"] == seen["ref"]


def _stdin_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("in/one", b"1\n"), ("in/two", b"22\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o604, STAMP
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("args", [["-", "{c}:/w"], ["-", "{c}:/wl"], ["-", "{c}:/w/file"],
                                  ["-", "{c}:/w/missing"], ["-q=false", "-", "{c}:/w/exist"]],
                         ids=" ".join)
def test_tar_from_stdin(runners, args: list[str]) -> None:
    seen = run_case(runners, args, stdin=_stdin_tar())
    assert seen["tether"] == seen["docker"]
    assert seen["tether"] == seen["ref"]


@pytest.mark.parametrize("args", [["{c}:/d", "-"], ["{c}:/d/f", "-"], ["{c}:/d/.", "-"],
                                  ["-L", "{c}:/d/lnk", "-"], ["{c}:/dl", "-"]], ids=" ".join)
def test_tar_to_stdout(runners, args: list[str]) -> None:
    seen = run_case(runners, args)
    listings = {name: (rc, _tar_listing(out) if rc == 0 else out, err, host)
                for name, (rc, out, err, host, _) in seen.items()}
    assert listings["tether"][0] == 0
    assert listings["tether"] == listings["docker"]
    assert listings["tether"] == listings["ref"]


def test_device_destination(runners) -> None:
    """A device in the container is no destination. (Docker 20.10 stats its rootfs without the
    container's /dev mounted, so only the two CLIs against tetherd are compared here.)"""
    results = {}
    for name in ("docker", "tether"):
        runner = runners[name]
        runner.reset()
        r = runner.cp("top.txt", f"{runner.container}:/dev/null")
        results[name] = (r.returncode, normalise(runner, r.stdout), normalise(runner, r.stderr))
    assert results["tether"] == results["docker"] == (
        1, "", 'destination "<c>:/dev/null" must be a directory or a regular file: got a device\n')


@pytest.mark.parametrize("args", [
    ["a", "b"], ["{c}:/a", "{c}:/b"], ["", "b"], ["a", ""], ["a"], ["a", "b", "c"],
    ["-q=maybe", "{c}:/d/f", "x"], ["--archive=nope", "top.txt", "{c}:/w"], ["--bogus", "a", "b"],
    ["-", "-"],
], ids=" ".join)
def test_usage_errors(runners, args: list[str]) -> None:
    results = {}
    for name in ("docker", "tether"):
        runner = runners[name]
        r = runner.cp(*[a.replace("{c}", runner.container) for a in args])
        results[name] = (r.returncode, normalise(runner, r.stdout), normalise(runner, r.stderr))
    assert results["tether"][0] != 0
    assert results["tether"] == results["docker"]


@pytest.mark.parametrize("args", [["src", "{c}:/w"], ["top.txt", "{c}:/w/new"],
                                  ["-q", "src", "{c}:/w"], ["{c}:/d/f", "out/"]], ids=" ".join)
def test_summary_when_stdout_is_a_terminal(runners, args: list[str]) -> None:
    """Without -q the summary goes to stderr only when stdout is a terminal."""
    results = {}
    for name, runner in runners.items():
        runner.reset()
        master, slave = os.openpty()
        try:
            r = runner.cp(*[a.replace("{c}", runner.container) for a in args], stdout=slave)
        finally:
            os.close(slave)
            os.close(master)
        results[name] = (r.returncode, normalise(runner, r.stderr))
    assert ("Successfully copied" in results["tether"][1]) == ("-q" not in args)
    assert results["tether"] == results["docker"] == results["ref"]


def test_stopped_container_both_ways(runners) -> None:
    """A created, never started container: into it, then back out of it."""
    results = {}
    for name, runner in runners.items():
        runner.reset()
        stopped = f"{runner.container}-stopped"
        r = runner.docker("create", "--name", stopped, "busybox", "true")
        assert r.returncode == 0, r.stderr
        try:
            steps = [runner.cp("-q=false", "src", f"{stopped}:/tmp/copied"),
                     runner.cp("-q=false", f"{stopped}:/tmp/copied", "back"),
                     runner.cp(f"{stopped}:/tmp/nosuch", "back")]
        finally:
            runner.docker("rm", "-f", stopped)
        outputs = [(s.returncode, normalise(runner, s.stdout),
                    normalise(runner, s.stderr).replace("-stopped", "")) for s in steps]
        results[name] = (outputs, host_view(runner.dir))
    assert results["tether"] == results["docker"]
    assert results["tether"][0][0] == results["ref"][0][0]  # the size tether sends, exactly
    assert results["tether"][0][2] == results["ref"][0][2]
    assert results["tether"][1] == results["ref"][1]
