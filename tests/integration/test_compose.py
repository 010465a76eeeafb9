"""Debian's docker-compose 1.29 drives tetherd through examples/compose, as it drives Docker.

The project (web + db + cache on the project's default network, web waiting for db's health
check, a monitor on the default bridge
with an external link to a container started outside the project) goes through `up -d`, `ps`,
`logs`, `exec` (with and without a TTY), `restart`, `stop` and `down`; the web page, fetched through
the published port from the daemon's netns, shows that web reached db and cache by name and by link
alias. `down` must leave no container, network, bridge, veth or container netns behind. The same
project then runs on the reference engine, and compose's outputs are compared.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Callable

from harness import REPO, Daemon
from reference import started

EXAMPLE = REPO / "examples" / "compose"
COMPOSE = "/usr/bin/docker-compose"
SERVICES = ("cache", "db", "monitor", "web")
OUTSIDE_CMD = ("nc", "-ll", "-p", "7000", "-e", "echo", "outside-ok")
PAGE = ("site=shop\n"
        "db by name: db=inventory\n"
        "cache by link alias: cache=64\n"
        "cache by name: cache=64\n")


def compose(host: str, project: str, *args: str, tty: bool = False, web_port: int = 8080,
            timeout: float = 180) -> subprocess.CompletedProcess:
    """docker-compose in the example's directory against `host`; with `tty`, under a pseudo
    terminal made by script(1), as compose's `exec` wants one unless given -T."""
    argv = [COMPOSE, "-p", project, *args]
    if tty:
        argv = ["script", "-qec", shlex.join(argv), "/dev/null"]
    # script(1) types end-of-file into the terminal when its input ends, racing with the command's
    # output: an input that stays open until the end keeps the terminal's echo out of the output
    quiet_input, keep_open = os.pipe()
    try:
        return subprocess.run(argv, cwd=EXAMPLE, capture_output=True, text=True,
                              timeout=timeout, stdin=quiet_input,
                              env={**os.environ, "DOCKER_HOST": host, "OUTSIDE": "outside",
                                   "WEB_PORT": str(web_port)})
    finally:
        os.close(quiet_input)
        os.close(keep_open)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    return result


def in_netns(netns: str, *argv: str) -> str:
    """A busybox applet run in `netns` (the engine's, where published ports listen)."""
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "busybox", *argv],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL).stdout


def fetch_page(netns: str, port: int = 8080) -> str:
    """The web page once web's CGI finds db and cache answering (they start in parallel)."""
    deadline = time.monotonic() + 30
    page = ""
    while time.monotonic() < deadline:
        page = in_netns(netns, "wget", "-qO-", f"http://127.0.0.1:{port}/cgi-bin/page")
        if page == PAGE:
            break
        time.sleep(0.2)
    return page


def ask_monitor(host: str, project: str, netns: str) -> str:
    """What monitor answers on its published (ephemeral) port: its external link at work."""
    port = ok(compose(host, project, "port", "monitor", "9100")).stdout.strip().rsplit(":", 1)[1]
    return in_netns(netns, "nc", "127.0.0.1", port)


def project_containers(d: Daemon, project: str) -> list[dict]:
    query = urllib.parse.quote(json.dumps({"label": [f"com.docker.compose.project={project}"]}))
    status, items = d.api("GET", f"/containers/json?all=1&filters={query}")
    assert status == 200, items
    return items


def links(netns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", netns, "-o", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def ps_states(output: str) -> dict[str, str]:
    """`docker-compose ps` rows: container name -> State column."""
    rows = [row for row in output.splitlines()[2:] if row.strip()]
    return {row.split()[0]: re.search(r"\s(Up|Exit \d+)(\s|$)", row).group(1) for row in rows}


def test_compose_project_life(fresh_daemon: Daemon) -> None:
    d, p = fresh_daemon, "shop"
    ok(d.docker("run", "-d", "--name", "outside", "busybox", *OUTSIDE_CMD))
    before = links(d.netns)

    up = ok(compose(d.host, p, "up", "-d"))
    assert 'Creating network "shop_default" with the default driver' in up.stderr
    ids = {c["Labels"]["com.docker.compose.service"]: c["Id"] for c in project_containers(d, p)}
    assert sorted(ids) == list(SERVICES)
    # web waited for db's health check: it started after db's first passing probe, which came
    # after failing ones (db makes itself ready seconds after it starts)
    db, web = (d.api("GET", f"/containers/{ids[s]}/json")[1]["State"] for s in ("db", "web"))
    assert db["Health"]["Status"] == "healthy", db
    codes = [entry["ExitCode"] for entry in db["Health"]["Log"]]
    first_pass = db["Health"]["Log"][codes.index(0)]
    assert 1 in codes[:codes.index(0)] and first_pass["End"] <= web["StartedAt"], (db, web)
    status, net = d.api("GET", "/networks/shop_default")
    assert status == 200, net
    assert net["Labels"]["com.docker.compose.project"] == p
    assert sorted(c["Name"] for c in net["Containers"].values()) == \
        ["shop_cache_1", "shop_db_1", "shop_web_1"]  # monitor is on the default bridge

    ps = ok(compose(d.host, p, "ps")).stdout
    assert ps_states(ps) == {f"shop_{s}_1": "Up" for s in SERVICES}
    assert re.search(r"^shop_db_1 .* Up \(healthy\) ", ps, re.M), ps
    assert "0.0.0.0:8080->80/tcp" in ps and "5432/tcp" in ps and "6379/tcp" in ps

    assert fetch_page(d.netns) == PAGE
    assert ask_monitor(d.host, p, d.netns) == \
        "upstream name /shop_monitor_1/upstream\noutside-ok\n"

    logs = ok(compose(d.host, p, "logs", "--no-color")).stdout
    for service, line in (("db", "db listening on 5432"), ("cache", "cache listening on 6379"),
                          ("web", "web listening on 80")):
        assert re.search(rf"^{service}_1 +\| {line}$", logs, re.M), logs

    with_tty = ok(compose(d.host, p, "exec", "web", "sh", "-c", "tty; echo $SITE", tty=True))
    assert re.fullmatch(r"/dev/pts/\d+\n+shop\n+", with_tty.stdout), with_tty.stdout
    no_tty = ok(compose(d.host, p, "exec", "-T", "db", "sh", "-c", "tty; echo $DB_NAME"))
    assert no_tty.stdout == "not a tty\ninventory\n"
    # a one-off container asks for a name as soon as it runs: the resolver must be there first
    one_off = ok(compose(d.host, p, "run", "--rm", "-T", "web", "nc", "db", "5432"))
    assert one_off.stdout == "db=inventory\n"

    started = {s: d.api("GET", f"/containers/{cid}/json")[1]["State"]["StartedAt"]
               for s, cid in ids.items()}
    ok(compose(d.host, p, "restart", "-t", "1"))
    for s, cid in ids.items():
        state = d.api("GET", f"/containers/{cid}/json")[1]["State"]
        assert state["Running"] and state["StartedAt"] != started[s]
    assert fetch_page(d.netns) == PAGE  # names follow the containers' new addresses

    ok(compose(d.host, p, "stop", "-t", "1"))
    assert ps_states(ok(compose(d.host, p, "ps")).stdout) == \
        {f"shop_{s}_1": "Exit 137" for s in SERVICES}

    down = ok(compose(d.host, p, "down", "-t", "1"))
    assert "Removing network shop_default" in down.stderr
    assert project_containers(d, p) == []
    assert d.api("GET", "/networks/shop_default")[0] == 404
    assert links(d.netns) == before
    for cid in ids.values():
        assert d.leaks(cid) == []
    assert [c["Names"] for c in d.api("GET", "/containers/json?all=1")[1]] == [["/outside"]]


def _normalise(text: str) -> str:
    """Ephemeral host ports differ between engines; compose's parallel progress lines come in
    any order, padded to the longest name printed so far; containers created in parallel are
    listed (`Attaching to`) in any order; endpoint IDs are random."""
    text = re.sub(r":\d{5}->", ":EPHEMERAL->", text)
    text = re.sub(r"endpoint (\S+) \([0-9a-f]{64}\)", r"endpoint \1 (ID)", text)
    text = re.sub(r"^Attaching to (.*)$",
                  lambda m: "Attaching to " + ", ".join(sorted(m[1].split(", "))), text,
                  flags=re.M)
    text = re.sub(r" +\.\.\.", " ...", text)
    return "\n".join(sorted(line.rstrip() for line in text.splitlines() if line.strip()))


def _session(host: str, netns: str, docker: Callable[..., subprocess.CompletedProcess]
             ) -> list[tuple[str, int, str, str]]:
    """The same compose commands on one engine: (command, exit code, stdout, stderr)."""
    assert docker("run", "-d", "--name", "outside", "busybox", *OUTSIDE_CMD).returncode == 0
    seen = []

    def run(*args: str, web_port: int = 8080, project: str = "cmp") -> None:
        r = compose(host, project, *args, web_port=web_port)
        seen.append((f"{project} {' '.join(args)} ({web_port})", r.returncode,
                     _normalise(r.stdout), _normalise(r.stderr)))

    run("config")
    run("up", "-d")
    run("ps")
    seen.append(("page", 0, fetch_page(netns), ""))
    seen.append(("monitor", 0, ask_monitor(host, "cmp", netns), ""))
    run("exec", "-T", "cache", "sh", "-c", "echo $CACHE_SIZE")
    run("run", "--rm", "-T", "web", "sh", "-c", "nc kv 6379; nc db 5432")
    run("ps", "--services")
    run("port", "web", "80")
    run("logs", "--no-color")
    run("up", "-d", project="clash")  # web's published port is taken: the others run
    run("ps", project="clash")
    run("down", "-t", "1", project="clash")
    run("up", "-d")
    seen.append(("events", 0, _restart_events(host), ""))
    run("up", "-d", web_port=8081)  # a changed service is recreated, the others kept
    run("up", "-d", "--force-recreate", "-t", "1", "db", web_port=8081)
    seen.append(("page after recreating", 0, fetch_page(netns, 8081), ""))
    run("stop", "-t", "1", web_port=8081)
    run("ps", web_port=8081)
    run("down", "-t", "1", web_port=8081)
    run("ps")
    seen.append(("foreground up", *_foreground_up(host)))
    run("down", "-t", "1", project="fg")
    return seen


def _foreground_up(host: str) -> tuple[int, str, str]:
    """`docker-compose up` attached to the services' output until ^C, which stops them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "up"
        with open(path, "wb") as sink:
            up = subprocess.Popen(
                [COMPOSE, "-p", "fg", "up", "--no-color", "-t", "1"], cwd=EXAMPLE, stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DOCKER_HOST": host, "OUTSIDE": "outside"})
        try:
            for service in ("db", "cache", "web"):
                _await_line(path, f"{service} listening on", lambda: time.sleep(0.1))
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        return up.returncode, _normalise(path.read_text()), ""


def _restart_events(host: str) -> str:
    """`docker-compose events --json` while db restarts: the actions and attributes compose
    shows. The watcher writes to a file of its own, read here until the last event came or a
    deadline passed, so a missing event ends in a clear failure, not a hang."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events"
        with open(path, "wb") as sink:
            watcher = subprocess.Popen(
                [COMPOSE, "-p", "cmp", "events", "--json"], cwd=EXAMPLE, stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DOCKER_HOST": host, "OUTSIDE": "outside"})
        try:
            _await_line(path, "exec_start",
                        lambda: ok(compose(host, "cmp", "exec", "-T", "db", "true")))
            ok(compose(host, "cmp", "restart", "-t", "1", "db"))
            _await_line(path, '"action": "restart"', lambda: time.sleep(0.1))
        finally:
            watcher.terminate()
            watcher.wait()
        events = [json.loads(line) for line in path.read_text().splitlines()]
    return "\n".join(f"{e['type']} {e['action']} {e['service']} {sorted(e['attributes'].items())}"
                     for e in events if not e["action"].startswith("exec_"))


def _await_line(path: Path, text: str, step: Callable[[], object]) -> None:
    """Do `step` until the watcher printed `text` (the watcher subscribes after its start-up)."""
    deadline = time.monotonic() + 30
    while text not in path.read_text() and time.monotonic() < deadline:
        step()


def test_compose_same_as_docker(fresh_daemon: Daemon) -> None:
    with started("i7c-compose") as ref:
        theirs = _session(ref.host, ref.name, ref.docker)
    ours = _session(fresh_daemon.host, fresh_daemon.netns, fresh_daemon.docker)
    for docker, tether in zip(theirs, ours):
        assert tether == docker
    outputs = {command: stdout for command, _, stdout, _ in theirs}
    errors = {command: stderr for command, _, _, stderr in theirs}
    assert "Bind for 0.0.0.0:8080 failed: port is already allocated" in \
        errors["clash up -d (8080)"]
    assert "Gracefully stopping... (press Ctrl+C again to force)" in outputs["foreground up"]
    assert "web_1 | web listening on 80" in re.sub(" +", " ", outputs["foreground up"])
    assert outputs["page"] == outputs["page after recreating"] == PAGE
    assert outputs["events"].splitlines()[0].startswith("container kill db")
    assert outputs["events"].splitlines()[-1].startswith("container restart db")
