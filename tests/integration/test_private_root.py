"""The data root is private: a setuid-root file that a container made (in its own layer or a
volume) or an image layer shipped cannot be run by a local user through any path under the data
root, while it runs (merged dir, upper dir, volume, layer diff) and after it stopped; a data
root whose dirs were opened (what an older tetherd made) is closed again at start-up; and no mode
depends on the umask tetherd was started with.

The harness keeps a daemon's data root in a 0700 mkdtemp dir, which alone would stop `nobody`:
this module's daemon gets that dir opened to 0755, so only the data root's own modes stand in the
way, and a control run shows that with those modes opened `nobody` does run the files as euid 0.
"""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from cbin import StaticBinaries
from conftest import running_daemon
from harness import Daemon
from tether.engine.paths import DATA_ROOT_MODES, EXEC_ROOT_MODES

# runuser, not setpriv: setpriv keeps root's capabilities up to and through its own execve (they
# go only after it), so the path it runs is looked up with CAP_DAC_OVERRIDE and any mode passes.
NOBODY = ["runuser", "-u", "nobody", "--"]
# Prints its effective UID; with an argument it waits forever (an image's only process).
EUID_SOURCE = r"""
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) for (;;) pause();
    printf("%d\n", (int)geteuid());
    return 0;
}
"""


@pytest.fixture(scope="module")
def d() -> Iterator[Daemon]:
    with running_daemon() as daemon:
        daemon.root.chmod(0o755)  # the harness's mkdtemp parent: not what this module tests
        yield daemon


@pytest.fixture(scope="module")
def euid(cbin: StaticBinaries) -> Path:
    return cbin.build("euid", EUID_SOURCE)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, timeout=30)


def setuid_files(root: Path) -> set[Path]:
    """Every setuid regular file below `root`, through every path (merged dirs included)."""
    found = set()
    for top, _, names in os.walk(root):
        for name in names:
            path = Path(top) / name
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_ISUID:
                found.add(path)
    return found


def assert_out_of_reach(paths: set[Path]) -> None:
    for path in sorted(paths):
        done = as_nobody(str(path))
        assert done.returncode != 0 and done.stdout == "", (path, done)
        assert "Permission denied" in done.stderr, (path, done.stderr)


def suid_image_tar(euid: Path) -> bytes:
    """A one-layer image: the probe, root-owned and setuid, at /suid."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("suid")
        info.mode, info.uid, info.gid, info.size = 0o4755, 0, 0, euid.stat().st_size
        with open(euid, "rb") as f:
            tar.addfile(info, f)
    return buf.getvalue()


def docker_ok(d: Daemon, *args: str, input: bytes | None = None) -> str:
    done = d.docker(*args, input=input)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout.decode()


def inspect(d: Daemon, *args: str) -> dict:
    return json.loads(docker_ok(d, *args))[0]


def open_guards(data_root: Path) -> None:
    """What a data root made by an older tetherd looks like: every guard dir 0755."""
    for relative, _ in DATA_ROOT_MODES:
        parent, _, name = relative.rpartition("/")
        targets = [p for p in (data_root / parent).iterdir() if p.is_dir()] if name == "*" \
            else [data_root / relative]
        for target in targets:
            target.chmod(0o755)


def test_setuid_files_under_the_data_root_are_out_of_reach(d: Daemon, euid: Path) -> None:
    docker_ok(d, "run", "-d", "--name", "made", "-v", f"{euid}:/probe:ro", "-v", "suidvol:/vol",
              "busybox", "sh", "-c",
              "cp /probe /p && cp /probe /vol/p && chmod 4755 /p /vol/p && exec sleep 1000")
    made = inspect(d, "inspect", "made")["GraphDriver"]["Data"]
    docker_ok(d, "import", "-", "suid:layer", input=suid_image_tar(euid))
    layer_diff = Path(inspect(d, "image", "inspect", "suid:layer")["GraphDriver"]["Data"]["UpperDir"])
    docker_ok(d, "run", "-d", "--name", "shipped", "suid:layer", "/suid", "wait")
    shipped = inspect(d, "inspect", "shipped")["GraphDriver"]["Data"]
    volume = Path(inspect(d, "volume", "inspect", "suidvol")["Mountpoint"])
    expected = {Path(made["UpperDir"]) / "p", Path(made["MergedDir"]) / "p", volume / "p",
                layer_diff / "suid", Path(shipped["MergedDir"]) / "suid"}
    # `cp` may still be running when `run -d` returns
    for _ in range(100):
        running = setuid_files(d.data_root)
        if expected <= running:
            break
        time.sleep(0.1)
    assert expected <= running, running
    assert_out_of_reach(running)
    listing = as_nobody("ls", str(d.data_root))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr

    # the control: the same files do run as root for nobody once the guards are opened
    open_guards(d.data_root)
    for path in sorted(running):
        done = as_nobody(str(path))
        assert (done.returncode, done.stdout) == (0, "0\n"), (path, done)

    # a restart closes them again (the containers keep running across it), then a stop
    d.stop()
    d.start()
    assert_out_of_reach(running)
    docker_ok(d, "kill", "made", "shipped")
    stopped = setuid_files(d.data_root)
    assert {Path(made["UpperDir"]) / "p", volume / "p", layer_diff / "suid"} <= stopped, stopped
    assert_out_of_reach(stopped)
    docker_ok(d, "rm", "made", "shipped")
    docker_ok(d, "volume", "rm", "suidvol")
    docker_ok(d, "rmi", "suid:layer")


def test_data_root_and_exec_root_get_dockerds_modes(d: Daemon, euid: Path) -> None:
    """Dirs made by this daemon (a container's, a layer's, a volume's) have their modes from the
    start, and a restart sets every guard's mode again, whatever it was."""
    docker_ok(d, "volume", "create", "privvol")
    docker_ok(d, "import", "-", "suid:again", input=suid_image_tar(euid))
    cid = docker_ok(d, "create", "-v", "privvol:/data", "suid:again", "/suid", "wait").strip()
    docker_ok(d, "start", cid)
    layer = Path(inspect(d, "image", "inspect", "suid:again")["GraphDriver"]["Data"]["UpperDir"]).parent

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    def check() -> None:
        for root, modes in ((d.data_root, DATA_ROOT_MODES), (d.exec_root, EXEC_ROOT_MODES)):
            for relative, expected in modes:
                if not relative.endswith("*"):
                    assert mode(root / relative) == expected, relative
        # dockerd 20.10: 0710 root, containers/ and containers/<id>, 0701 volumes/ and
        # volumes/<name> with a 0755 _data, 0700 exec root (ours 0711: the socket may be in it)
        assert mode(d.data_root) == 0o710 and mode(d.data_root / "containers" / cid) == 0o710
        assert mode(layer) == 0o710
        assert mode(d.data_root / "volumes" / "privvol") == 0o701
        assert mode(d.data_root / "volumes" / "privvol" / "_data") == 0o755
        assert mode(d.exec_root / "bundles") == 0o700
        assert (d.data_root / "containers" / cid).stat().st_uid == 0

    check()
    d.stop()
    open_guards(d.data_root)
    for path in (d.exec_root, d.exec_root / "bundles", d.exec_root / "runtime"):
        path.chmod(0o755)
    d.start()
    check()
    status = as_nobody("ls", str(d.exec_root / "runtime"))
    assert status.returncode != 0 and "Permission denied" in status.stderr
    docker_ok(d, "rm", "-f", cid)
    docker_ok(d, "volume", "rm", "privvol")
    docker_ok(d, "rmi", "suid:again")


def test_modes_do_not_depend_on_the_umask_tetherd_was_started_with() -> None:
    """Started with umask 000, tetherd still makes what a container sees as `/` and /etc/hosts
    0755 and 0644 (dockerd sets umask 022 at start too), not writable by everyone."""
    d = Daemon(wrapper=["sh", "-c", 'umask 000 && exec "$@"', "sh"])
    try:
        d.start()
        status, body = d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert status == 200, body
        seen = docker_ok(d, "run", "--rm", "busybox", "stat", "-c", "%a %n", "/", "/etc/hosts")
        assert seen.split("\n")[:2] == ["755 /", "644 /etc/hosts"]
        assert stat.S_IMODE(d.data_root.stat().st_mode) == 0o710
    finally:
        d.destroy()
