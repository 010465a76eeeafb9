#!/usr/bin/env python3
"""Median wall time of a detached `run`, through the tether CLI and the docker CLI against tetherd,
and through the docker CLI against Docker itself (the reference engine) when asked.

    .venv/bin/python bench/run_latency.py [-n 20] [--reference] [--limits | --protections]
                                          [--parallel 50] [--rounds 3] [--docker-cli-only]
                                          [--baseline DIR]

--limits adds a memory and a pids limit to each run. --protections runs what issue 16 measures:
`run -d -P --expose 80 --memory 64m --pids-limit 100 --health-cmd true --health-interval 1s
busybox sleep 600`, under each engine's default seccomp profile (checked: the first container's
process must show `Seccomp: 2` in /proc/PID/status on both engines, and its health check must
report healthy). Its containers keep running, so each is removed after its timed run (untimed),
and the engines are measured in turns, round by round, so that the load of a shared machine
falls on both alike.

--parallel N also times N such runs started at once (the wall time until the last client exits),
once per round; the N containers are removed before the next measurement.

Wall times on a shared machine follow its load; the engines' CPU time does much less. Each
engine's daemons (tetherd; dockerd and its containerd) are put in a cpuacct cgroup of their own
(cgroup v1), which the processes they start inherit (conmon, runc, containerd's shims,
docker-proxy) until runc moves a container's own processes into the container's cgroup; the CPU
time that cgroup used during each timed run is reported beside the wall time.

--baseline DIR adds a second tetherd running the tether sources in DIR/src (an unpacked
`git archive` of an earlier commit, say), measured through the docker CLI in the same rounds:
before and after a change under the same load.

A test daemon is started in a network namespace of its own (as the integration tests do) and torn
down at the end; with --reference, the project's refdocker.sh runs Docker 20.10 in another
namespace (tests/integration/reference.py), with the same busybox image imported, and is stopped
at the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

LIMITS = ["--memory", "64m", "--pids-limit", "100"]
PROTECTIONS = ["-P", "--expose", "80", *LIMITS, "--health-cmd", "true", "--health-interval", "1s"]


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class EngineCpu:
    """A cpuacct cgroup holding one engine's daemons: the CPU time they and their children use.
    Inert where the host has no cgroup v1 cpuacct hierarchy."""

    def __init__(self, name: str) -> None:
        self.path = CPUACCT / name if CPUACCT.is_dir() else None
        if self.path is not None:
            self.path.mkdir(exist_ok=True)

    def add(self, pid: int) -> None:
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(pid))

    def seconds(self) -> float:
        if self.path is None:
            return 0.0
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        """Back to the root cgroup with whatever is left in it, then gone."""
        if self.path is None or not self.path.is_dir():
            return
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                (CPUACCT / "cgroup.procs").write_text(pid)
            except OSError:
                pass  # exited meanwhile
        self.path.rmdir()


@dataclass
class Client:
    """One client against one engine, and what was measured through it."""

    label: str
    argv: list[str]                       # the client's command line up to `run`
    env: dict[str, str]
    cpu: EngineCpu
    singles: list[float] = field(default_factory=list)
    batches: list[float] = field(default_factory=list)
    single_cpu: list[float] = field(default_factory=list)
    batch_cpu: list[float] = field(default_factory=list)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([*self.argv, *args], env={**os.environ, **self.env},
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            raise SystemExit(f"{self.label}: {args} failed: {r.stderr}")
        return r


def timed(client: Client, run: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    r = client(*run)
    return time.perf_counter() - started, r.stdout.strip()


def remove(client: Client, ids: list[str]) -> None:
    if ids:
        client("rm", "-f", *ids)


def single_runs(client: Client, run: list[str], n: int, keep_running: bool) -> None:
    for _ in range(n):
        cpu = client.cpu.seconds()
        elapsed, cid = timed(client, run)
        client.single_cpu.append(client.cpu.seconds() - cpu)
        client.singles.append(elapsed)
        if keep_running:
            remove(client, [cid])


def parallel_runs(client: Client, run: list[str], count: int) -> None:
    cpu = client.cpu.seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(lambda _: timed(client, run), range(count)))
    client.batches.append(time.perf_counter() - started)
    client.batch_cpu.append(client.cpu.seconds() - cpu)
    remove(client, [cid for _, cid in results])


def seccomp_mode(client: Client, cid: str) -> str:
    """The `Seccomp:` line of the container's process (2: a filter is installed)."""
    pid = client("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Seccomp:"):
            return line.split()[1]
    return "?"


def check_protections(client: Client, run: list[str]) -> None:
    """The first container really runs filtered, and its health check really runs."""
    cid = client(*run).stdout.strip()
    try:
        mode = seccomp_mode(client, cid)
        if mode != "2":
            raise SystemExit(f"{client.label}: Seccomp: {mode}, not 2 (no filter applied)")
        deadline = time.monotonic() + 20
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(0.2)
            status = client("inspect", "-f", "{{.State.Health.Status}}", cid).stdout.strip()
        if status != "healthy":
            raise SystemExit(f"{client.label}: health status {status!r}, not healthy")
        ports = client("port", cid).stdout.strip()
        print(f"{client.label:38s} checked: Seccomp: {mode}, health {status}, ports {ports!r}")
    finally:
        remove(client, [cid])


def report(label: str, times: list[float], cpu: list[float], what: str = "median") -> float:
    median = statistics.median(times)
    print(f"{label:38s} {what} {median * 1000:7.1f} ms   min {min(times) * 1000:7.1f} ms   "
          f"max {max(times) * 1000:7.1f} ms   engine CPU {statistics.median(cpu) * 1000:7.1f} ms"
          f"   (n={len(times)})")
    return median


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20, help="single runs per client and round")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--limits", action="store_true",
                      help="run with --memory 64m --pids-limit 100")
    mode.add_argument("--protections", action="store_true",
                      help="run -d -P with limits and a health check under default seccomp")
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="also time N runs started at once, once per round")
    p.add_argument("--rounds", type=int, default=1, help="measure every client this many times")
    p.add_argument("--baseline", type=Path, metavar="DIR",
                   help="also measure a tetherd running the sources in DIR/src")
    p.add_argument("--docker-cli-only", action="store_true",
                   help="leave out the tether CLI (the engines compared through one client)")
    args = p.parse_args()
    options = PROTECTIONS if args.protections else LIMITS if args.limits else []
    command = ["sleep", "600"] if args.protections else ["true"]
    run = ["run", "-d", *options, "busybox", *command]
    d = Daemon()
    ref = ReferenceEngine("bench-run-latency") if args.reference else None
    base = Daemon(wrapper=["env", f"PYTHONPATH={args.baseline.resolve() / 'src'}"]) \
        if args.baseline else None
    base_cpu = EngineCpu(f"{d.netns}-bench-baseline")
    tether_cpu = EngineCpu(f"{d.netns}-bench")
    docker_cpu = EngineCpu(f"{d.netns}-bench-docker")
    try:
        d.start()
        assert d.proc is not None
        tether_cpu.add(d.proc.pid)  # nsenter execs tetherd: the same process
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        clients = [Client("tether CLI -> tetherd", [str(REPO / ".venv/bin/tether"), "-H", d.host],
                          {}, tether_cpu),
                   Client("docker CLI -> tetherd", ["docker"], {"DOCKER_HOST": d.host}, tether_cpu)]
        if args.docker_cli_only:
            del clients[0]
        if base is not None:
            base.start()
            assert base.proc is not None
            base_cpu.add(base.proc.pid)  # env and nsenter exec: the same process
            base.api("POST", "/tether/bootstrap/busybox", timeout=120)
            clients.append(Client("docker CLI -> tetherd (baseline)", ["docker"],
                                  {"DOCKER_HOST": base.host}, base_cpu))
        if ref is not None:
            ref.start()
            for pidfile in (f"/run/ref-{ref.name}.pid", f"/run/ref-{ref.name}-containerd.pid"):
                docker_cpu.add(int(Path(pidfile).read_text()))
            clients.append(Client("docker CLI -> Docker 20.10", ["docker"],
                                  {"DOCKER_HOST": ref.host}, docker_cpu))
        for client in clients:
            if args.protections:
                check_protections(client, run)
            single_runs(client, run, 2, args.protections)  # warm caches
            client.singles.clear()
            client.single_cpu.clear()
        print(f"load average at the start: {os.getloadavg()}")
        for _ in range(args.rounds):
            for client in clients:
                single_runs(client, run, args.n, args.protections)
                if args.parallel:
                    parallel_runs(client, run, args.parallel)
            d.remove_all()
        print(f"load average at the end: {os.getloadavg()}")
        medians = {c.label: report(c.label, c.singles, c.single_cpu) for c in clients}
        walls = {c.label: report(c.label, c.batches, c.batch_cpu, f"{args.parallel:3d} at once")
                 for c in clients if c.batches}
        docker = "docker CLI -> Docker 20.10"
        if ref is not None:
            for label in medians:
                if label != docker:
                    line = f"{label} / Docker: {medians[label] / medians[docker]:.2f}x"
                    if walls:
                        ratio = walls[label] / walls[docker]
                        line += f" single, {ratio:.2f}x {args.parallel} at once"
                    print(line)
    finally:
        d.destroy()
        if base is not None:
            base.destroy()
        if ref is not None:
            ref.stop()
        base_cpu.remove()
        tether_cpu.remove()
        docker_cpu.remove()


if __name__ == "__main__":
    main()
