#!/usr/bin/env python3
"""Links at scale: N containers linked to one `db`, then db moved to a new address.

    .venv/bin/python bench/links_scale.py [-n 100] [--reference]

Each parent is `docker run -d --name pI --link db:db busybox sleep 3600` (docker CLI, timed: the
1st and the Nth run are compared, since every new parent adds to the link graph the daemon walks).
Then db is stopped, a container takes its address (both engines hand out the lowest free one) and
db is started again with a new IP: the daemon must rewrite the db line of all N parents' hosts files
in place. The files are read on the host (inspect's HostsPath), so the time of the last rewrite is
the newest mtime among them, measured from just before the start request; the figure is taken once
every file holds the new address. Inodes are checked too: a rewrite must keep the bind-mounted file.

A test daemon runs in a network namespace of its own (as the integration tests do); with
--reference, Docker 20.10 runs the same in another one (tests/integration/reference.py). Both are
torn down at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon, UnixHTTPConnection  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

SLEEP = ["busybox", "sleep", "3600"]
REWRITE_TIMEOUT = 30.0


@dataclass
class Engine:
    """The docker CLI and the API of one engine, by its unix socket."""
    label: str
    sock: str

    def docker(self, *args: str) -> str:
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "DOCKER_HOST": f"unix://{self.sock}"})
        if proc.returncode:
            raise SystemExit(f"{self.label}: docker {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def api(self, method: str, path: str) -> Any:
        conn = UnixHTTPConnection(self.sock, 120)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 300:
                raise SystemExit(f"{self.label}: {method} {path}: {resp.status} {data!r}")
            return json.loads(data) if data else None
        finally:
            conn.close()

    def ip(self, name: str) -> str:
        return self.api("GET", f"/containers/{name}/json")["NetworkSettings"]["IPAddress"]


def timed_run(engine: Engine, *args: str) -> float:
    started = time.perf_counter()
    engine.docker("run", "-d", *args)
    return time.perf_counter() - started


def run_parents(engine: Engine, n: int) -> list[float]:
    return [timed_run(engine, "--name", f"p{i}", "--link", "db:db", *SLEEP)
            for i in range(1, n + 1)]


def holds(path: Path, ip: str) -> bool:
    return any(line.startswith(f"{ip}\tdb ") for line in path.read_text().splitlines())


def move_db(engine: Engine, hosts: list[Path]) -> dict[str, float]:
    """Stop db, let `thief` take its address, start db; time until every hosts file is rewritten."""
    inodes = [p.stat().st_ino for p in hosts]
    old_ip = engine.ip("db")
    engine.docker("stop", "-t", "0", "db")
    engine.docker("run", "-d", "--name", "thief", *SLEEP)
    if engine.ip("thief") != old_ip:
        raise SystemExit(f"{engine.label}: thief got {engine.ip('thief')}, not db's {old_ip}")
    started = time.time()
    engine.api("POST", "/containers/db/start")
    returned = time.time()
    new_ip = engine.ip("db")
    deadline = time.monotonic() + REWRITE_TIMEOUT
    pending = list(hosts)
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if not holds(p, new_ip)]
        time.sleep(0.002)
    if pending:
        raise SystemExit(f"{engine.label}: {len(pending)} hosts files still without {new_ip}")
    if [p.stat().st_ino for p in hosts] != inodes:
        raise SystemExit(f"{engine.label}: hosts files were replaced, not rewritten in place")
    last = max(p.stat().st_mtime_ns for p in hosts) / 1e9
    return {"start request": returned - started, "last rewrite": last - started}


def measure(engine: Engine, n: int) -> dict[str, float]:
    engine.docker("run", "-d", "--name", "db", "--expose", "5432", *SLEEP)
    timed_run(engine, "--rm", "busybox", "true")  # warm the CLI and the daemon's caches
    runs = run_parents(engine, n)
    hosts = [Path(engine.api("GET", f"/containers/p{i}/json")["HostsPath"])
             for i in range(1, n + 1)]
    moved = move_db(engine, hosts)
    figures = {"run 1st": runs[0], f"run {n}th": runs[-1],
               "run median of first 10": statistics.median(runs[:10]),
               "run median of last 10": statistics.median(runs[-10:]), **moved}
    report(engine.label, n, figures)
    return figures


def report(label: str, n: int, figures: dict[str, float]) -> None:
    print(f"{label}:")
    for name, seconds in figures.items():
        print(f"  {name:28s} {seconds * 1000:8.1f} ms")
    print(f"  {'run ' + str(n) + 'th / 1st':28s} {figures[f'run {n}th'] / figures['run 1st']:8.2f}x"
          f"   (medians last/first 10: "
          f"{figures['run median of last 10'] / figures['run median of first 10']:.2f}x)")


def on_tether(n: int) -> dict[str, float]:
    d = Daemon()
    try:
        d.start()
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        return measure(Engine("tetherd", d.sock), n)
    finally:
        d.destroy()


def on_docker(n: int) -> dict[str, float]:
    ref = ReferenceEngine("linksbench")
    try:
        ref.start()
        return measure(Engine("Docker 20.10", ref.host.removeprefix("unix://")), n)
    finally:
        ref.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=100, help="containers linked to db")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    args = p.parse_args()
    on_tether(args.n)
    if args.reference:
        on_docker(args.n)


if __name__ == "__main__":
    main()
