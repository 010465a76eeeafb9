#!/usr/bin/env python3
"""Median wall time of a detached `run`, through the tether CLI and the docker CLI against tetherd,
and through the docker CLI against Docker itself (the reference engine) when asked.

    .venv/bin/python bench/run_latency.py [-n 20] [--reference] [--limits]

--limits adds a memory and a pids limit to each run (the docker CLI only: the tether CLI has no
limit flags).

A test daemon is started in a network namespace of its own (as the integration tests do) and torn
down at the end; with --reference, `../shared/reference/refdocker.sh` runs Docker 20.10 in another
namespace, with the same busybox image imported, and is stopped at the end.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from reference import REFDOCKER  # noqa: E402  (beside the checkout, or above a worktree)

from tether.image.bootstrap import busybox_rootfs_tar  # noqa: E402



def timed_runs(argv: list[str], env: dict[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        r = subprocess.run(argv, env={**os.environ, **env}, capture_output=True)
        times.append(time.perf_counter() - started)
        if r.returncode != 0:
            raise SystemExit(f"{argv} failed: {r.stderr.decode()}")
    return times


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"{label:38s} median {median * 1000:7.1f} ms   min {min(times) * 1000:7.1f} ms   "
          f"max {max(times) * 1000:7.1f} ms   (n={len(times)})")
    return median


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="runs per client")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    p.add_argument("--limits", action="store_true",
                   help="run with --memory 64m --pids-limit 100 (docker CLI only)")
    args = p.parse_args()
    limits = ["--memory", "64m", "--pids-limit", "100"] if args.limits else []
    run = ["run", "-d", *limits, "busybox", "true"]
    results: dict[str, float] = {}
    d = Daemon()
    try:
        d.start()
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        timed_runs(["docker", *run], {"DOCKER_HOST": d.host}, 2)  # warm caches
        if not args.limits:
            results["tether CLI -> tetherd"] = report(
                "tether CLI -> tetherd", timed_runs(
                    [str(REPO / ".venv/bin/tether"), "-H", d.host, *run], {}, args.n))
        results["docker CLI -> tetherd"] = report(
            "docker CLI -> tetherd", timed_runs(["docker", *run], {"DOCKER_HOST": d.host}, args.n))
        d.remove_all()
    finally:
        d.destroy()
    if args.reference:
        sock = subprocess.run([str(REFDOCKER), "start", "bench"], capture_output=True, text=True,
                              check=True).stdout.strip()
        try:
            env = {"DOCKER_HOST": sock}
            tar = io.BytesIO()
            busybox_rootfs_tar(tar)
            subprocess.run(["docker", "import", "-c", 'CMD ["sh"]', "-", "busybox:latest"],
                           input=tar.getvalue(), env={**os.environ, **env}, check=True,
                           capture_output=True)
            timed_runs(["docker", *run], env, 2)
            results["docker CLI -> Docker 20.10"] = report(
                "docker CLI -> Docker 20.10", timed_runs(["docker", *run], env, args.n))
        finally:
            subprocess.run([str(REFDOCKER), "stop", "bench"], capture_output=True)
        docker = results["docker CLI -> Docker 20.10"]
        for label in ("tether CLI -> tetherd", "docker CLI -> tetherd"):
            if label in results:
                print(f"{label} / Docker: {results[label] / docker:.2f}x")


if __name__ == "__main__":
    main()
