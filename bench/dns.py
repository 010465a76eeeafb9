#!/usr/bin/env python3
"""The embedded DNS resolver seen from inside a container: queries per second and latency.

    .venv/bin/python bench/dns.py [--seconds 5] [--repeat 3] [--reference]

For tetherd (and Docker 20.10 with --reference) in a network namespace of its own, a user-defined
network holds a `target` container and a client container with Python (an image made from the
host's python3.11, see tests/integration/hostimage.py). The client sends an A query for `target`
to 127.0.0.11:53 over UDP, waits for the reply, and sends the next: one query in flight, so the
rate is the inverse of the round trip and the percentiles are each query's own time. Each figure
is the median of `--repeat` runs; with --reference both engines are up at once and take turns,
so that the load of the machine (2 cores, shared) weighs on both alike.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterator

from dnslib import DNSRecord

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from hostimage import host_binaries_tar, import_args  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

NETWORK = "dnsbench"
# One query in flight; a lost one (no reply in 1 s) is counted and sent again. The first reply
# must answer the name (ANCOUNT 1), or the figures would time an error path.
CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    query, seconds = bytes.fromhex(sys.argv[1]), float(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.11", 53))
    s.settimeout(1)
    s.send(query)
    first = s.recv(4096)
    assert first[:2] == query[:2] and first[6:8] == b"\\x00\\x01", first
    times, lost = [], 0
    clock = time.perf_counter_ns
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = clock()
        s.send(query)
        try:
            s.recv(4096)
        except TimeoutError:
            lost += 1
            continue
        times.append(clock() - t)
    times.sort()
    print(json.dumps({"qps": len(times) / seconds, "lost": lost,
                      "p50": times[len(times) // 2] / 1e6,
                      "p99": times[int(len(times) * 0.99)] / 1e6}))
""")
Docker = Callable[..., subprocess.CompletedProcess]


@contextlib.contextmanager
def prepared(docker: Docker) -> Iterator[Callable[[float], dict[str, float]]]:
    """The network and its two containers on one engine, and a function that runs the client
    once for some seconds; everything is removed afterwards. `docker(*args)` runs a
    docker-CLI-compatible command against the engine under test."""
    tar = host_binaries_tar(["/usr/bin/python3.11"], ["/usr/lib/python3.11"])
    r = docker("import", *import_args(), "-", "dnsbench-client", input=tar, timeout=300)
    assert r.returncode == 0, r.stderr
    r = docker("network", "create", NETWORK)
    assert r.returncode == 0, r.stderr
    made: list[str] = []
    try:
        for image, name in (("busybox", "target"), ("dnsbench-client", "client")):
            r = docker("run", "-d", "--name", name, "--network", NETWORK, image, "sleep", "3600")
            assert r.returncode == 0, r.stderr
            made.append(name)
        query = DNSRecord.question("target").pack().hex()

        def run_once(seconds: float) -> dict[str, float]:
            r = docker("exec", "client", "python3.11", "-c", CLIENT, query, str(seconds),
                       timeout=seconds + 60)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)

        yield run_once
    finally:
        if made:
            docker("rm", "-f", *made)
        docker("network", "rm", NETWORK)


def report(label: str, runs: list[dict[str, float]]) -> dict[str, float]:
    result = {key: statistics.median(run[key] for run in runs)
              for key in ("qps", "p50", "p99", "lost")}
    print(f"{label:8s} {result['qps']:8.0f} queries/s   p50 {result['p50']:6.3f} ms   "
          f"p99 {result['p99']:6.3f} ms   lost {result['lost']:.0f}   (median of {len(runs)})")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    p.add_argument("--reference-name", default="dnsbench",
                   help="the reference engine's name (its socket is /run/ref-NAME.sock)")
    args = p.parse_args()
    d = Daemon()
    ref = ReferenceEngine(args.reference_name) if args.reference else None
    try:
        d.start()
        status, body = d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert status == 200, body
        with contextlib.ExitStack() as stack:
            engines = {"tether": stack.enter_context(prepared(d.docker))}
            if ref is not None:
                ref.start()
                engines["docker"] = stack.enter_context(prepared(ref.docker))
            runs: dict[str, list[dict[str, float]]] = {label: [] for label in engines}
            for _ in range(args.repeat):  # turns, so that the machine's drift weighs on both
                for label, run_once in engines.items():
                    runs[label].append(run_once(args.seconds))
            results = {label: report(label, label_runs) for label, label_runs in runs.items()}
    finally:
        d.destroy()
        if ref is not None:
            ref.stop()
    if "docker" in results:
        ours, theirs = results["tether"], results["docker"]
        print(f"tether/docker: {ours['qps'] / theirs['qps']:.2f}x the rate, "
              f"p99 {ours['p99']:.3f} ms against {theirs['p99']:.3f} ms")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
