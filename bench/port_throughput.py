#!/usr/bin/env python3
"""Published ports against direct connections: TCP throughput (iperf3) and connection rate.

    .venv/bin/python bench/port_throughput.py [--seconds 5] [--repeat 3] [--reference]

For tetherd (and Docker 20.10 with --reference) in a network namespace of its own, a container
runs an iperf3 server and a connection-accepting server, published on the host. Each figure is
measured twice, once through the published port and once straight to the container's address,
from the host's loopback and from a second namespace acting as an outside machine (a veth pair,
10.98.0.1 host side). The ratio published/direct is what the NAT (or Docker's docker-proxy) costs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from hostimage import host_binaries_tar, import_args  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

HOST, OUTSIDE = "10.98.0.1", "10.98.0.2"
ACCEPT_SERVER = textwrap.dedent("""
    import socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 6000)); s.listen(1024)
    while True:
        c, _ = s.accept(); c.close()
""")
# Each connection is closed with a reset (SO_LINGER 0): no TIME_WAIT is left on either side, so
# the rate measures connection set-up through the path, not how each side recycles ports.
CLIENT_RATE = """
import socket, struct, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
linger = struct.pack("ii", 1, 0)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.create_connection((host, port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.close()
    n += 1
print(n / seconds)
"""


def sh(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, **kw)


def in_ns(netns: str, *argv: str) -> str:
    return sh("nsenter", f"--net=/run/netns/{netns}", *argv, timeout=120).stdout


def paired(repeat: int, measure_once, direct: tuple, published: tuple) -> tuple[float, float]:
    """Medians of `repeat` runs each, the two paths taking turns so that drift of the machine
    (two cores shared by client, server and kernel) weighs on both alike."""
    runs = [(measure_once(*direct), measure_once(*published)) for _ in range(repeat)]
    return statistics.median(d for d, _ in runs), statistics.median(p for _, p in runs)


def throughput(netns: str, host: str, seconds: float) -> float:
    report = json.loads(in_ns(netns, "iperf3", "-c", host, "-t", str(seconds), "-J"))
    return report["end"]["sum_received"]["bits_per_second"] / 1e9


def conn_rate(netns: str, host: str, port: int, seconds: float) -> float:
    return float(in_ns(netns, sys.executable, "-c", CLIENT_RATE, host, str(port), str(seconds)))


def outside_netns(host_netns: str) -> str:
    name = f"bench-out-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    sh("ip", "-n", host_netns, "link", "add", "bench-out", "type", "veth", "peer", "name",
       "bench-host", "netns", name)
    sh("ip", "-n", host_netns, "addr", "add", f"{HOST}/24", "dev", "bench-out")
    sh("ip", "-n", name, "addr", "add", f"{OUTSIDE}/24", "dev", "bench-host")
    sh("ip", "-n", host_netns, "link", "set", "bench-out", "up")
    sh("ip", "-n", name, "link", "set", "bench-host", "up")
    sh("ip", "-n", name, "route", "add", "172.16.0.0/12", "via", HOST)
    return name


def measure(label: str, host_netns: str, docker, seconds: float, repeat: int) -> None:
    """`docker(*args)` runs a docker-CLI-compatible command against the engine under test."""
    tar = host_binaries_tar(["/usr/bin/iperf3", "/usr/bin/python3.11"], ["/usr/lib/python3.11"])
    r = docker("import", *import_args(), "-", "benchtools", input=tar)
    assert r.returncode == 0, r.stderr
    r = docker("run", "-d", "-p", "5201:5201", "-p", "6000:6000", "benchtools", "sh", "-c",
               f"iperf3 -s -D; exec python3.11 -c '{ACCEPT_SERVER}'")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.decode().strip()
    ip = json.loads(docker("inspect", cid).stdout)[0]["NetworkSettings"]["IPAddress"]
    outside = outside_netns(host_netns)
    try:
        time.sleep(1)
        rows = []
        for where, netns, published_host in (("loopback", host_netns, "127.0.0.1"),
                                             ("outside", outside, HOST)):
            direct_bw, published_bw = paired(repeat, throughput, (netns, ip, seconds),
                                             (netns, published_host, seconds))
            direct_rate, published_rate = paired(repeat, conn_rate, (netns, ip, 6000, seconds),
                                                 (netns, published_host, 6000, seconds))
            rows.append((where, direct_bw, published_bw, direct_rate, published_rate))
        for where, dbw, pbw, dr, pr in rows:
            print(f"{label:8s} {where:9s} throughput direct {dbw:6.2f} Gbit/s published {pbw:6.2f} "
                  f"Gbit/s ({pbw / dbw:.2f}x)   conn/s direct {dr:7.0f} published {pr:7.0f} "
                  f"({pr / dr:.2f}x)")
    finally:
        sh("ip", "netns", "del", outside)
        docker("rm", "-f", cid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    args = p.parse_args()
    d = Daemon()
    try:
        d.start()
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        measure("tether", d.netns, d.docker, args.seconds, args.repeat)
    finally:
        d.destroy()
    if args.reference:
        ref = ReferenceEngine("bench")
        try:
            ref.start()
            measure("docker", ref.name, ref.docker, args.seconds, args.repeat)
        finally:
            ref.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
