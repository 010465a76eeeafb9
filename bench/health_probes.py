#!/usr/bin/env python3
"""The cost of health checks: N containers (default 50) probing `true` every second, on tetherd
and, with --reference, on Docker 20.10.

    .venv/bin/python bench/health_probes.py [-c 50] [-w 20] [-r 3] [--reference]

For each engine: the probes' latency as the engine records it (End - Start of every State.Health
log entry: exec set-up, the process, its exit collected), and the daemon's own CPU time over
`-w` seconds of steady probing, as a share of one core (for Docker, dockerd's alone: containerd
and its shims run the execs there, and containerd is shared with other reference engines on
this machine, so its figure would not be this run's). Each of `-r` windows gives a median latency and a CPU share; their medians are
printed. tetherd runs in a network namespace of its own as in the integration tests, Docker in
the reference engine's; both are torn down at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
Docker = Callable[..., subprocess.CompletedProcess]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process itself (its children's are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _seconds(stamp: str) -> float:
    head, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").timestamp()
    return base + float("0." + (frac or "0"))


def start_probing(docker: Docker, count: int) -> list[str]:
    names = [f"hp{i}" for i in range(count)]
    for name in names:
        r = docker("run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "1s",
                   "busybox", "sleep", "3600")
        if r.returncode:
            raise SystemExit(r.stderr.decode())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        healthy = docker("ps", "-q", "--filter", "health=healthy").stdout.split()
        if len(healthy) == count:
            return names
        time.sleep(1)
    raise SystemExit("the containers did not all become healthy")


def latencies(docker: Docker, names: list[str], since: float) -> list[float]:
    """Probe durations (seconds) of the log entries that started after `since`."""
    out = docker("inspect", "--format", "{{json .State.Health.Log}}", *names).stdout.decode()
    found = []
    for line in out.splitlines():
        for entry in json.loads(line):
            if _seconds(entry["Start"]) >= since:
                found.append(_seconds(entry["End"]) - _seconds(entry["Start"]))
    return found


def measure(label: str, docker: Docker, pids: list[int], count: int, window: float,
            rounds: int) -> None:
    names = start_probing(docker, count)
    medians, shares = [], []
    for _ in range(rounds):
        since, cpu = time.time(), sum(cpu_seconds(p) for p in pids)
        time.sleep(window)
        used = sum(cpu_seconds(p) for p in pids) - cpu
        shares.append(used / (time.time() - since))
        # the log keeps five results: a window of at most 5 s is read whole
        medians.append(statistics.median(latencies(docker, names, time.time() - 4.5)))
    print(f"{label:32s} probe latency median {statistics.median(medians) * 1000:6.1f} ms   "
          f"daemon CPU {statistics.median(shares) * 100:5.1f}% of a core   "
          f"(windows: {[round(m * 1000, 1) for m in medians]} ms, "
          f"{[round(s * 100, 1) for s in shares]} %)")
    docker("rm", "-f", *names, timeout=300)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", type=int, default=50, help="containers probing")
    p.add_argument("-w", type=float, default=20, help="seconds of a measuring window")
    p.add_argument("-r", type=int, default=3, help="windows")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    args = p.parse_args()
    d = Daemon()
    try:
        d.start()
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert d.proc is not None
        measure("tetherd", d.docker, [d.proc.pid], args.c, args.w, args.r)
    finally:
        d.destroy()
    if args.reference:
        ref = ReferenceEngine("bench-health")
        try:
            ref.start()
            dockerd = int(Path(f"/run/ref-{ref.name}.pid").read_text())
            measure("Docker 20.10 (dockerd)", ref.docker, [dockerd], args.c, args.w, args.r)
        finally:
            ref.stop()


if __name__ == "__main__":
    main()
