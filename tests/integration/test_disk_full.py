"""A full data root never wedges a container: stop, kill, rm -f and the daemon's start need no
free space; a change that needs it (create, rename) fails with dockerd's `no space left on
device` text, without a host path, and changes nothing; once space is freed everything works
again without a restart and the records written meanwhile are whole."""
from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import running_daemon
from harness import Daemon
from test_lifecycle import inspect, out, wait_for

pytestmark = pytest.mark.integration

DATA_ROOT_SIZE = "96m"
HANG_GUARD = 30  # seconds: a command that needs free space would hang or fail, not finish


def _tmpfs_data_root(d: Daemon) -> None:
    d.data_root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DATA_ROOT_SIZE},mode=0711", "tmpfs",
                    str(d.data_root)], check=True)


@pytest.fixture
def small_daemon() -> Iterator[Daemon]:
    """A daemon whose data root is a tmpfs of its own, small enough to fill (unmounted by the
    daemon's destroy, with everything below its root)."""
    with running_daemon(prepare=_tmpfs_data_root) as d:
        yield d


def fill(path: Path) -> None:
    """Write `path` until the filesystem refuses another byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


def record(d: Daemon, cid: str) -> dict:
    return json.loads((d.data_root / "containers" / cid / "config.json").read_bytes())


def assert_space_error(d: Daemon, result: subprocess.CompletedProcess) -> str:
    """A refusal in dockerd's words that names no host path."""
    assert result.returncode != 0, result
    text = result.stderr.decode()
    assert "no space left on device" in text, text
    assert str(d.root) not in text and str(d.exec_root) not in text, text
    return text


def test_full_data_root(small_daemon):
    d = small_daemon
    ids = {name: out(d.tether("run", "-d", "--name", name, "busybox", "sleep", "600"))
           for name in ("keep", "stopme", "killme", "rmme")}
    ids["renameme"] = out(d.tether("create", "--name", "renameme", "busybox", "true"))
    fillers = [d.data_root / "filler1", d.data_root / "filler2"]
    fill(fillers[0])

    # what needs space fails cleanly
    assert_space_error(d, d.tether("create", "--name", "new", "busybox", "true"))
    status, body = d.api("POST", "/containers/create?name=new2", {"Image": "busybox"})
    assert status == 500 and "no space left on device" in body["message"], body
    assert str(d.root) not in body["message"]
    assert d.api("GET", "/containers/new/json")[0] == 404
    assert not [p for p in (d.data_root / "containers").iterdir() if p.name not in ids.values()]
    assert_space_error(d, d.tether("rename", "renameme", "renamed"))
    assert inspect(d, "renameme")["Name"] == "/renameme"
    assert record(d, ids["renameme"])["name"] == "/renameme"
    assert d.api("GET", "/containers/renamed/json")[0] == 404

    # what frees or stops never needs space
    out(d.tether("stop", "-t", "1", "stopme", timeout=HANG_GUARD))
    assert inspect(d, "stopme")["State"]["Status"] == "exited"
    assert record(d, ids["stopme"])["state"]["status"] == "running"  # not written yet...
    kept = d.exec_root / "records" / f"{ids['stopme']}.json"
    assert json.loads(kept.read_bytes())["state"]["status"] == "exited"  # ...kept meanwhile
    out(d.tether("kill", "killme", timeout=HANG_GUARD))
    wait_for(lambda: inspect(d, "killme")["State"]["Status"] == "exited", what="killme exited")
    out(d.tether("rm", "-f", "rmme", timeout=HANG_GUARD))
    assert d.api("GET", "/containers/rmme/json")[0] == 404
    assert d.leaks(ids["rmme"]) == []

    # the daemon starts on a full disk (the removal freed a little: fill it again)
    fill(fillers[1])
    d.stop()
    d.start()
    assert inspect(d, "keep")["State"]["Running"] is True
    # the states the data root could not take came back from the exec root, exit codes too
    for name in ("stopme", "killme"):
        state = inspect(d, name)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 137), state
    assert inspect(d, "renameme")["Name"] == "/renameme"
    assert_space_error(d, d.tether("rename", "renameme", "renamed"))
    assert out(d.tether("exec", "keep", "echo", "alive")) == "alive"

    # space comes back: no restart needed, the records a full disk refused get written
    for filler in fillers:
        filler.unlink()
    wait_for(lambda: record(d, ids["stopme"])["state"]["status"] == "exited",
             what="stopme's record written")
    wait_for(lambda: record(d, ids["killme"])["state"]["status"] == "exited",
             what="killme's record written")
    wait_for(lambda: not kept.exists(), what="the kept copy dropped")
    out(d.tether("rename", "renameme", "renamed"))
    assert record(d, ids["renameme"])["name"] == "/renamed"
    again = out(d.tether("run", "-d", "--name", "again", "busybox", "sleep", "600"))
    assert out(d.tether("exec", "again", "echo", "works")) == "works"
    out(d.tether("rm", "-f", "again"))
    assert d.leaks(again) == []
    out(d.tether("start", "stopme"))
    assert inspect(d, "stopme")["State"]["Running"] is True

    # nothing lost: every record is whole and says what inspect says
    for name in ("keep", "stopme", "killme", "renamed"):
        view = inspect(d, name)
        saved = record(d, view["Id"])
        assert (saved["name"], saved["state"]["status"]) == (view["Name"], view["State"]["Status"])
    for cid in (ids["keep"], ids["stopme"], ids["killme"], ids["renameme"]):
        out(d.tether("rm", "-f", cid))
        assert d.leaks(cid) == []
