"""The seed document's legacy-links transcript ("使用link连接" onwards), through the docker CLI,
against tetherd and against Docker 20.10 (the reference engine): every step's output must be the
same after normalisation.

The seed's images are stood in for by busybox rootfs imports: `training/postgres` (ENV
PG_VERSION=9.3, EXPOSE 5432, a `postgres` script answering on 5432) and `training/webapp` (EXPOSE
5000, a `python` script answering on 5000, so that the seed's `... training/webapp python app.py`
runs as written). Both scripts leave on SIGTERM, so `stop` is quick and exits 0 on both engines.

The transcript is stateful, so it runs once per engine (module fixture) and each step is then
compared on its own. Normalisation maps what two engines legitimately differ in to names: IDs
(full and 12-hex hostnames) to the container they belong to, IPv4 addresses to the container that
held them when they were first seen (`<ip:db>`, then `<ip:db#2>` after db moves), ephemeral host
ports by order of appearance, times and durations. The daemon fixture is shared with other tests,
so `ps` and the API list are narrowed to the transcript's containers.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest

from harness import UnixHTTPConnection
from reference import started
from tether.image.bootstrap import CHANGES, busybox_rootfs_tar

pytestmark = pytest.mark.integration

OURS = ("db", "web", "web2", "thief", "web3", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "self")
SERVER = ("#!/bin/sh\ntrap 'exit 0' TERM\n"
          "while true; do echo {reply} | nc -l -p {port} & wait $!; done\n")
PATH_CHANGE = [arg for change in CHANGES if change.startswith("ENV ") for arg in ("-c", change)]
STAND_INS = {
    "training/webapp": ({"usr/local/bin/python": SERVER.format(reply="hi", port=5000),
                         "app.py": ""}, ["EXPOSE 5000", 'CMD ["python", "app.py"]']),
    "training/postgres": ({"usr/local/bin/postgres": SERVER.format(reply="pg", port=5432)},
                          ["ENV PG_VERSION=9.3", "EXPOSE 5432", 'CMD ["postgres"]']),
}
PS_ROW = "{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
ENVIRON_OF_PID1 = "tr '\\0' '\\n' </proc/1/environ | sort"


def stand_in_tar(files: dict[str, str]) -> bytes:
    """The busybox rootfs plus executable `files` (path -> text)."""
    base = io.BytesIO()
    busybox_rootfs_tar(base)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(base.getvalue())) as src, \
            tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(text.encode()), 0o755
            dst.addfile(info, io.BytesIO(text.encode()))
    return out.getvalue()


# ---- engines ---------------------------------------------------------------------------------

@dataclass
class Engine:
    """What a step needs of an engine: its docker CLI and its API socket."""
    docker: Callable[..., subprocess.CompletedProcess]
    sock: str

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = UnixHTTPConnection(self.sock, 30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else None
        finally:
            conn.close()

    def our_containers(self) -> list[dict]:
        status, items = self.api("GET", "/containers/json?all=1")
        assert status == 200, items
        return sorted((c for c in items if primary_name(c["Names"]) in OURS),
                      key=lambda c: primary_name(c["Names"]))

    def clear(self) -> None:
        self.docker("rm", "-f", *OURS)


def primary_name(names: list[str]) -> str:
    """A container's own name among its names (the others are link names, "/web/db")."""
    return next(n for n in names if n.count("/") == 1)[1:]


# ---- normalisation ---------------------------------------------------------------------------

@dataclass
class Normaliser:
    """Per engine: learns which container holds which ID and address as the transcript goes."""
    ids: dict[str, str] = field(default_factory=dict)
    ips: dict[str, str] = field(default_factory=dict)
    ports: dict[str, str] = field(default_factory=dict)

    def learn(self, containers: list[dict]) -> None:
        for c in containers:
            name = primary_name(c["Names"])
            self.ids[c["Id"]] = name
            ip = (c["NetworkSettings"]["Networks"].get("bridge") or {}).get("IPAddress")
            if ip and ip not in self.ips:
                held = sum(1 for label in self.ips.values() if label.startswith(f"<ip:{name}"))
                self.ips[ip] = f"<ip:{name}>" if not held else f"<ip:{name}#{held + 1}>"

    def _id(self, m: re.Match) -> str:
        text = m.group(0)
        full = next((i for i in self.ids if i.startswith(text)), None)
        kind = "id" if len(text) == 64 else "sid"
        return f"<{kind}:{self.ids[full]}>" if full else f"<{kind}?>"

    def _port(self, m: re.Match) -> str:
        return self.ports.setdefault(m.group(0), f"<port#{len(self.ports) + 1}>")

    def __call__(self, data: bytes) -> str:
        out = data.decode(errors="replace")
        out = re.sub(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b", self._id, out)
        out = re.sub(r"\b\d{1,3}(?:\.\d{1,3}){3}\b",
                     lambda m: m.group(0) if m.group(0) in ("0.0.0.0", "127.0.0.1")
                     else self.ips.get(m.group(0), "<ip?>"), out)
        out = re.sub(r"(?<=:)\d{5}\b", self._port, out)
        out = re.sub(r"[\d.]+(?:/[\d.]+)* ms\b", "<T> ms", out)
        out = re.sub(r"Less than a second|About an? \w+|\d+ (?:second|minute|hour)s?", "<DUR>", out)
        return re.sub(r" {2,}", "  ", out)


# ---- the transcript --------------------------------------------------------------------------

Action = Callable[[Engine], tuple[int, bytes, bytes]]


def cli(*args: str, sort: bool = False, rows: bool = False) -> Action:
    """A docker CLI command; `sort` sorts stdout's lines (env), `rows` keeps the header and the
    rows of the transcript's own containers (the shared daemon may hold others), by their last
    column, the names."""
    def run(engine: Engine) -> tuple[int, bytes, bytes]:
        proc = engine.docker(*args)
        lines = proc.stdout.decode().splitlines(keepends=True)
        if sort:
            lines.sort()
        if rows:
            lines = [ln for ln in lines if names_column(ln) in (*OURS, "NAMES")]
        return proc.returncode, "".join(lines).encode(), proc.stderr
    return run


def names_column(line: str) -> str:
    """The first name in a `ps` line whose last column is NAMES ("db,web/db" -> "db")."""
    fields = line.split()
    return fields[-1].split(",")[0] if fields else ""


def api_create(body: dict) -> Action:
    """A create straight through the API (what the CLI would refuse to send); a container it
    makes when it should not is removed again, so that the daemon is left clean."""
    def run(engine: Engine) -> tuple[int, bytes, bytes]:
        status, reply = engine.api("POST", "/containers/create", body)
        if status == 201:
            engine.api("DELETE", f"/containers/{reply['Id']}?force=1")
        return status, json.dumps(reply).encode(), b""
    return run


def api_names(engine: Engine) -> tuple[int, bytes, bytes]:
    """`Names` of the API list: a linked container also carries its link names."""
    return 0, json.dumps([c["Names"] for c in engine.our_containers()]).encode(), b""


def exec_in(name: str, script: str) -> Action:
    return cli("exec", name, "sh", "-c", script)


LINKS = cli("inspect", "-f", "{{.Name}} {{json .HostConfig.Links}}", "web", "web2", "db")
WEBAPP = ("training/webapp", "python", "app.py")  # as the seed runs it
NAMES = cli("ps", "-a", "--no-trunc", "--format", "{{.Names}}", rows=True)
PS = cli("ps", "-a", "--format", PS_ROW, rows=True)

TRANSCRIPT: list[tuple[str, Action]] = [
    ("run db", cli("run", "-d", "--name", "db", "training/postgres")),
    ("run web linked to db",
     cli("run", "-d", "-P", "--name", "web", "--link", "db:db", *WEBAPP)),
    ("web env", cli("exec", "web", "env", sort=True)),
    ("web hosts", cli("exec", "web", "cat", "/etc/hosts")),
    ("web ping db", cli("exec", "web", "ping", "-c1", "db")),
    ("web reaches db's unpublished port by alias", exec_in("web", "nc -w 2 db 5432 </dev/null")),
    ("port web", cli("port", "web")),
    ("port web 5000", cli("port", "web", "5000")),
    ("ps", cli("ps", rows=True)),
    ("ps rows", PS),
    ("ps names", NAMES),
    ("inspect links", LINKS),
    ("API names", api_names),
    ("run web2 linked to db as webdb",
     cli("run", "-d", "--name", "web2", "--link", "db:webdb", *WEBAPP)),
    ("web2 env in order", cli("exec", "web2", "env")),
    ("web2 hosts", cli("exec", "web2", "cat", "/etc/hosts")),
    ("web2 ping webdb", cli("exec", "web2", "ping", "-c1", "webdb")),
    ("web2 ping db", cli("exec", "web2", "ping", "-c1", "db")),
    ("inspect links with two parents", LINKS),
    ("API names with two parents", api_names),
    ("ps names with two parents", NAMES),
    ("stop db", cli("stop", "db")),
    ("web env while db is stopped", cli("exec", "web", "env", sort=True)),
    ("web hosts while db is stopped", cli("exec", "web", "cat", "/etc/hosts")),
    ("thief takes db's address", cli("run", "-d", "--name", "thief", "training/postgres")),
    ("start db", cli("start", "db")),
    ("web hosts after db moved", cli("exec", "web", "cat", "/etc/hosts")),
    ("web2 hosts after db moved", cli("exec", "web2", "cat", "/etc/hosts")),
    ("web exec env after db moved", cli("exec", "web", "env", sort=True)),
    ("web PID 1 env after db moved", exec_in("web", ENVIRON_OF_PID1)),
    ("web ping db after db moved", cli("exec", "web", "ping", "-c1", "db")),
    ("restart db", cli("restart", "db")),
    ("web hosts after db restart", cli("exec", "web", "cat", "/etc/hosts")),
    ("ps after db moved", PS),
    ("link to unknown container",
     cli("run", "-d", "--name", "x1", "--link", "nosuch:db", "training/webapp")),
    ("link in bad format", cli("run", "-d", "--name", "x2", "--link", "db:a:b", "training/webapp")),
    ("links with host networking",
     cli("run", "-d", "--name", "x3", "--network", "host", "--link", "db:db", "training/webapp")),
    ("links with container networking",
     cli("run", "-d", "--name", "x4", "--network", "container:db", "--link", "db:db",
         "training/webapp")),
    ("self link", cli("run", "-d", "--name", "self", "--link", "self:me", "training/webapp")),
    ("API create, link in bad format",
     api_create({"Image": "training/webapp", "HostConfig": {"Links": ["db:a:b"]}})),
    ("API create, empty link",
     api_create({"Image": "training/webapp", "HostConfig": {"Links": [""]}})),
    ("link without alias", cli("run", "-d", "--name", "x5", "--link", "db", "training/webapp")),
    ("x5 env in order", cli("exec", "x5", "env")),
    ("x5 hosts", cli("exec", "x5", "cat", "/etc/hosts")),
    ("stop db again", cli("stop", "db")),
    ("run web3 linked to stopped db",
     cli("run", "-d", "--name", "web3", "--link", "db:db", "training/webapp")),
    ("stop web", cli("stop", "web")),
    ("start web linked to stopped db", cli("start", "web")),
    # a failed start leaves "Exited (128)"; Docker 20.10 also leaves the failed start's port
    # bindings on the exited container, a leak tether need not copy: ports are not compared here
    ("ps with db stopped", cli("ps", "-a", "--format", "{{.Status}}\t{{.Names}}", rows=True)),
    ("start db and web", cli("start", "db", "web")),
    ("web hosts after both started", cli("exec", "web", "cat", "/etc/hosts")),
    ("rm --link of a top-level name", cli("rm", "--link", "/db")),
    ("rm --link with unknown parent", cli("rm", "--link", "/nosuch/db")),
    ("rm --link with unknown alias", cli("rm", "--link", "/web/nosuch")),
    ("rm --link /web/db", cli("rm", "--link", "/web/db")),
    ("web hosts after rm --link", cli("exec", "web", "cat", "/etc/hosts")),
    ("web exec env after rm --link", cli("exec", "web", "env", sort=True)),
    ("inspect links after rm --link", LINKS),
    ("API names after rm --link", api_names),
    ("rm --link again", cli("rm", "--link", "web/db")),
    # one container under two aliases: two independent links (Go map order: compared sorted)
    ("one container under two aliases",
     cli("run", "-d", "--name", "x6", "--link", "db:one", "--link", "db:two", "training/webapp")),
    ("x6 env", cli("exec", "x6", "env", sort=True)),
    ("x6 hosts", cli("exec", "x6", "cat", "/etc/hosts", sort=True)),
    # the same alias twice: the second link is dropped
    ("alias taken twice",
     cli("run", "-d", "--name", "x7", "--link", "db:same", "--link", "thief:same",
         "training/webapp")),
    ("x7 hosts", cli("exec", "x7", "cat", "/etc/hosts")),
    ("x7 links", cli("inspect", "-f", "{{json .HostConfig.Links}}", "x7")),
    # a linked container removed and made anew: the link still names the removed one
    ("remove db", cli("rm", "-f", "db")),
    ("a new db", cli("run", "-d", "--name", "db", "training/postgres")),
    ("restart x5 after db was removed", cli("restart", "x5")),
]
LABELS = [label for label, _ in TRANSCRIPT]
assert len(set(LABELS)) == len(LABELS)


def play(engine: Engine) -> dict[str, str]:
    """Run the whole transcript on one engine; each step's exit status, stdout and stderr,
    normalised with what the engine's container list says right after the step."""
    normalise = Normaliser()
    outputs = {}
    for label, action in TRANSCRIPT:
        try:
            code, out, err = action(engine)
        except subprocess.TimeoutExpired:
            code, out, err = -1, b"", b"timed out"
        normalise.learn(engine.our_containers())
        outputs[label] = f"exit {code}\n--- stdout\n{normalise(out)}--- stderr\n{normalise(err)}"
    return outputs


def import_stand_ins(engine: Engine) -> None:
    for tag, (files, changes) in STAND_INS.items():
        argv = ["import", *PATH_CHANGE, *[a for c in changes for a in ("-c", c)], "-", tag]
        proc = engine.docker(*argv, input=stand_in_tar(files))
        assert proc.returncode == 0, proc.stderr


def played(engine: Engine) -> dict[str, str]:
    engine.clear()
    try:
        import_stand_ins(engine)
        return play(engine)
    finally:
        engine.clear()


@pytest.fixture(scope="module")
def transcripts(daemon) -> Iterator[dict[str, dict[str, str]]]:
    with started("linksdiff") as ref:
        docker = played(Engine(ref.docker, ref.host.removeprefix("unix://")))
    yield {"docker": docker, "tether": played(Engine(daemon.docker, daemon.sock)),
           "tether-cli": played(Engine(tether_cli(daemon), daemon.sock))}


def tether_cli(daemon) -> Callable[..., subprocess.CompletedProcess]:
    """The tether CLI against tetherd, its own name read as docker's ("tether: Error ...",
    "Run 'tether run --help'"), so that its transcript compares with the docker CLI's."""
    def run(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        r = daemon.tether(*args, input=input, timeout=timeout)
        return subprocess.CompletedProcess(r.args, r.returncode,
                                           r.stdout.replace(b"tether", b"docker"),
                                           r.stderr.replace(b"tether", b"docker"))
    return run


@pytest.mark.parametrize("label", LABELS)
def test_step_same_as_docker(transcripts: dict[str, dict[str, str]], label: str) -> None:
    assert transcripts["tether"][label] == transcripts["docker"][label]


@pytest.mark.parametrize("label", LABELS)
def test_step_same_through_the_tether_cli(transcripts: dict[str, dict[str, str]],
                                          label: str) -> None:
    assert transcripts["tether-cli"][label] == transcripts["docker"][label]


def test_reference_transcript_shows_the_seed(transcripts: dict[str, dict[str, str]]) -> None:
    """The normalisation keeps what the seed is about: Docker's own outputs, as normalised, show
    the link env, the hosts line moving to db's new address while PID 1 keeps the old one, and
    the errors. (If normalising erased these, every comparison above would be empty.)"""
    docker = transcripts["docker"]
    assert "DB_PORT_5432_TCP_ADDR=<ip:db>\nDB_PORT_5432_TCP_PORT=5432\n" in docker["web env"]
    assert "DB_ENV_PG_VERSION=9.3\nDB_NAME=/web/db\n" in docker["web env"]
    assert "<ip:db>\tdb <sid:db>\n<ip:web>\t<sid:web>\n" in docker["web hosts"]
    assert "<ip:db>\twebdb <sid:db> db\n" in docker["web2 hosts"]
    assert "WEBDB_NAME=/web2/webdb\n" in docker["web2 env in order"]
    assert "<ip:db#2>\tdb <sid:db>\n" in docker["web hosts after db moved"]
    assert "DB_PORT=tcp://<ip:db#2>:5432\n" in docker["web exec env after db moved"]
    assert "DB_PORT=tcp://<ip:db>:5432\n" in docker["web PID 1 env after db moved"]
    assert "Cannot link to a non running container: /db AS /web/db" in \
        docker["start web linked to stopped db"]
    assert "[\"/db\", \"/web/db\", \"/web2/webdb\"]" in docker["API names with two parents"]
    assert "\tdb" not in docker["web hosts after rm --link"]
