"""Links through tether's CLI against the docker CLI, both talking to ONE reference Docker 20.10
engine: --link's flag errors, the create body (inspected back from the engine), `ps` NAMES of a
linked pair, and `rm --link` with its output and errors. Then `tether links`, which docker has no
counterpart of, on tetherd itself: ok, stale env after the linked container moved, not running."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from reference import ReferenceEngine, started
from test_lifecycle import inspect, out

pytestmark = pytest.mark.integration

NAME = "linkscli"
TETHER = str(Path(sys.executable).parent / "tether")
Outcome = tuple[int, str, str]


@pytest.fixture(scope="module")
def ref() -> Iterator[ReferenceEngine]:
    """The seed's pair: db, and web linked to it (as db and as webdb), both running."""
    with started(NAME) as engine:
        engine.docker("run", "-d", "--name", "db", "--expose", "5432", "busybox", "sleep", "600",
                      check=True)
        engine.docker("run", "-d", "--name", "web", "--link", "db:db", "--link", "db:webdb",
                      "busybox", "sleep", "600", check=True)
        yield engine


def tether(engine: ReferenceEngine, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TETHER, "-H", engine.host, *args], capture_output=True, timeout=60)


def normalise(proc: subprocess.CompletedProcess) -> Outcome:
    def clean(data: bytes) -> str:
        return re.sub(r"[0-9a-f]{64}", "<ID>", data.decode().replace("tether", "docker"))
    return proc.returncode, clean(proc.stdout), clean(proc.stderr)


def untimed(outcome: Outcome) -> Outcome:
    """CREATED and STATUS tick between the two CLIs' runs ("Up 2 seconds", then "Up 3 seconds"):
    their numbers go, and the padding that a longer number would widen shrinks to one gap."""
    code, stdout, stderr = outcome
    stdout = re.sub(r"Less than a second|About a minute|\b\d+ (second|minute)s?\b", "<T>", stdout)
    return code, re.sub(r" {2,}", "  ", stdout), stderr


def both(engine: ReferenceEngine, *args: str) -> tuple[Outcome, Outcome]:
    return normalise(engine.docker(*args)), normalise(tether(engine, *args))


def stored_links(engine: ReferenceEngine, proc: subprocess.CompletedProcess) -> str:
    """HostConfig.Links the engine stored from a successful create, the container's own name
    replaced (the container is removed again)."""
    if proc.returncode:
        return ""
    cid = proc.stdout.decode().strip()
    try:
        name, links = engine.docker("inspect", "-f", "{{.Name}} {{json .HostConfig.Links}}", cid,
                                    check=True).stdout.decode().split(" ", 1)
        # the generated names differ; Docker lists links in Go map order, so compare them sorted
        stored = json.loads(links.replace(f"{name}/", "/<NAME>/"))
        return json.dumps(sorted(stored) if stored else stored)
    finally:
        engine.docker("rm", cid, check=True)


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("links", [["a:b:c"], [""], ["db", "::"], ["db:x:"]])
def test_bad_link_errors(ref: ReferenceEngine, command: str, links: list[str]) -> None:
    argv = [command, *(arg for link in links for arg in ("--link", link)), "busybox"]
    docker, ours = both(ref, *argv)
    assert ours == docker and docker[0] == 125


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("link", ["nosuch:x", "stopped:x"])
def test_daemon_link_errors(ref: ReferenceEngine, command: str, link: str) -> None:
    """create reports the daemon's errors plainly (exit 1), run with its "docker:" framing; create
    may link a stopped container, run cannot start then. One CLI after the other, so that the
    parent can have the same name in both."""
    argv = [command, "--name", "child", "--link", link, "busybox"]
    outcomes = []
    for cli in (ref.docker, lambda *args: tether(ref, *args)):
        ref.docker("create", "--name", "stopped", "busybox", check=True)
        try:
            outcomes.append(normalise(cli(*argv)))
        finally:
            ref.docker("rm", "-f", "stopped", "child")
    assert outcomes[1] == outcomes[0]


@pytest.mark.parametrize("links", [["db"], ["db:alias"], ["db:DB-1", "db:other"], ["/db:/x/y"],
                                   ["nosuch:x"], ["db:alias", "db:alias"]])
def test_create_stores_the_same_links(ref: ReferenceEngine, links: list[str]) -> None:
    argv = ["create", *(arg for link in links for arg in ("--link", link)), "busybox"]
    docker, ours = ref.docker(*argv), tether(ref, *argv)
    assert normalise(ours)[::2] == normalise(docker)[::2]
    assert stored_links(ref, ours) == stored_links(ref, docker)


def test_ps_names_of_a_linked_pair(ref: ReferenceEngine) -> None:
    for args in (["ps"], ["ps", "--no-trunc"], ["ps", "--format", "{{.Names}}"],
                 ["ps", "--no-trunc", "--format", "{{.Names}}"]):
        docker, ours = both(ref, *args)
        assert untimed(ours) == untimed(docker)
    names = ref.docker("ps", "--no-trunc", "--format", "{{.Names}}").stdout.decode().split()
    assert sorted(names) == ["db,web/db,web/webdb", "web"]


def test_rm_link(ref: ReferenceEngine) -> None:
    for parent in ("p1", "p2"):
        ref.docker("create", "--name", parent, "--link", "db:x", "busybox", check=True)
    try:
        docker = normalise(ref.docker("rm", "--link", "/p1/x"))
        ours = normalise(tether(ref, "rm", "--link", "/p2/x"))
        assert ours == (docker[0], docker[1].replace("p1", "p2"), docker[2]) == (0, "/p2/x\n", "")
        for parent in ("p1", "p2"):
            links = ref.docker("inspect", "-f", "{{json .HostConfig.Links}}", parent).stdout
            assert links.decode() == "null\n"
    finally:
        ref.docker("rm", "p1", "p2")


@pytest.mark.parametrize("args", [["/db"], ["db"], ["/nosuch/x"], ["/web/nosuch"], ["/"],
                                  ["/", "//web/nosuch/"], ["-f", "/nosuch/x"]])
def test_rm_link_errors(ref: ReferenceEngine, args: list[str]) -> None:
    docker, ours = both(ref, "rm", "--link", *args)
    assert ours == docker


def test_tether_links_view(daemon) -> None:
    d = daemon
    squatter = ""
    try:
        db = out(d.tether("run", "-d", "--name", "cdb", "--expose", "5432", "busybox", "sleep",
                          "300"))
        out(d.tether("run", "-d", "--name", "cweb", "--link", "cdb:db", "busybox", "sleep", "300"))
        ip = inspect(d, db)["NetworkSettings"]["IPAddress"]
        row = f"cweb      db        cdb         {ip.ljust(13)}5432/tcp   "
        header = "PARENT    ALIAS     CONTAINER   IP ADDRESS   PORTS      STATE\n"
        assert out(d.tether("links", "cweb")) + "\n" == header + row + "ok\n"
        assert row + "ok" in out(d.tether("links")).splitlines()
        out(d.tether("stop", "-t", "0", "cdb"))
        assert out(d.tether("links", "cweb")).splitlines()[1].endswith("   not running")
        squatter = out(d.tether("run", "-d", "busybox", "sleep", "300"))  # takes cdb's address
        out(d.tether("start", "cdb"))
        new_ip = inspect(d, db)["NetworkSettings"]["IPAddress"]
        assert new_ip != ip
        lines = out(d.tether("links", "cweb")).splitlines()
        assert lines[1] == row.replace(ip.ljust(13), new_ip.ljust(13)) + "stale env"
        assert lines[2] == ""
        assert f"  /cweb/db: DB_PORT=tcp://{ip}:5432 (now {new_ip})" in lines[3:]
        assert f"  /cweb/db: DB_PORT_5432_TCP_ADDR={ip} (now {new_ip})" in lines[3:]
        [link] = json.loads(out(d.tether("links", "--format", "json", "cweb")))
        assert (link["Name"], link["ChildID"], link["Stale"]) == ("/cweb/db", db, True)
        assert out(d.tether("rm", "--link", "/cweb/db")) == "/cweb/db"
        assert out(d.tether("links", "cweb")) == header.replace("PORTS      ", "PORTS     ").strip()
    finally:
        d.tether("rm", "-f", "cweb", "cdb", *([squatter] if squatter else []))
