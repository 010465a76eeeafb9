#!/usr/bin/env python3
"""Many API clients at once: latency of `GET /containers/json` and of exec create + start with
N containers (default 200) running and C clients (default 50) sending requests concurrently.

    .venv/bin/python bench/api_clients.py [-n 200] [-c 50] [-s 8] [-r 3] [--reference]

Each engine gets N `busybox sleep 3600` containers. Then, per run, three phases of `-s` seconds
each: C threads, each with a keep-alive connection of its own (as docker-py's pool keeps one),
send back to back
  list      GET /containers/json
  list-all  GET /containers/json?all=1
  exec      POST /containers/{id}/exec (`true`, stdout and stderr attached), then
            POST /exec/{id}/start asking for the upgrade, on a connection of its own (the
            hijacked connection is not reused, by docker-py either), read to its end
and every request's latency is kept (for exec: create + start until the stream ends). Each run
prints p50, p99, max, throughput and the engine's CPU time per request (tetherd with the runc
execs it waits for; dockerd, its containerd and their shims with theirs) per engine and phase; the summary gives their medians over
the `-r` runs. With --reference, Docker 20.10 serves the same load: both engines are up at once
and take turns phase by phase, so that drift in the machine's load weighs on both alike.

tetherd runs in a network namespace of its own as in the integration tests, Docker in the
reference engine's (tests/integration/reference.py); both are torn down at the end, also on
failure or Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Daemon, UnixHTTPConnection  # noqa: E402
from reference import ReferenceEngine  # noqa: E402

EXEC_BODY = json.dumps({"Cmd": ["true"], "AttachStdout": True, "AttachStderr": True}).encode()
START_BODY = json.dumps({"Detach": False, "Tty": False}).encode()
JSON = {"Content-Type": "application/json"}


TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Engine:
    """An engine's socket, its containers, and the processes that do its work (read anew
    before each phase: Docker starts a shim per container)."""
    label: str
    sock: str
    ids: list[str]
    processes: Callable[[], list[int]]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the processes and of their children they have waited for (the runc execs
    of tetherd, or of Docker's shims), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += sum(int(f) for f in fields[11:15])
    return total / TICK


def docker_processes(ref: ReferenceEngine) -> Callable[[], list[int]]:
    """dockerd, its containerd and the shims of that containerd (found by its socket)."""
    address = f"/run/ref-{ref.name}/containerd/containerd.sock"

    def pids() -> list[int]:
        found = [int(Path(f"/run/ref-{ref.name}.pid").read_text()),
                 int(Path(f"/run/ref-{ref.name}-containerd.pid").read_text())]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
                    found.append(int(entry.name))
        return found
    return pids


def call(conn: UnixHTTPConnection, method: str, path: str, body: bytes | None = None,
         expect: int = 200) -> Any:
    conn.request(method, path, body, JSON if body is not None else {})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != expect:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


def exec_start(sock: str, exec_id: str) -> None:
    """Start an exec as docker-py does (Connection: Upgrade) and read the stream to its end."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(120)
        s.connect(sock)
        s.sendall(f"POST /v1.41/exec/{exec_id}/start HTTP/1.1\r\nHost: localhost\r\n"
                  "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(START_BODY)}\r\n\r\n".encode() + START_BODY)
        received = bytearray()
        while chunk := s.recv(65536):
            received += chunk
        if not received.startswith((b"HTTP/1.1 101", b"HTTP/1.1 200")):
            raise RuntimeError(f"exec start: {bytes(received[:300])!r}")
    finally:
        s.close()


def create_containers(engine: Engine, n: int) -> None:
    """N running sleepers, created and started by a few clients at once."""
    body = json.dumps({"Image": "busybox", "Cmd": ["sleep", "3600"]}).encode()

    def one(i: int) -> str:
        conn = UnixHTTPConnection(engine.sock, 120)
        try:
            cid = call(conn, "POST", f"/v1.41/containers/create?name=api{i}", body, 201)["Id"]
            call(conn, "POST", f"/v1.41/containers/{cid}/start", b"", 204)
            return cid
        finally:
            conn.close()
    with ThreadPoolExecutor(8) as pool:
        engine.ids[:] = list(pool.map(one, range(n)))


def load(engine: Engine, clients: int, seconds: float,
         request: Callable[[UnixHTTPConnection, int, int], None]) -> tuple[list[float], float]:
    """`clients` threads calling request(conn, client, i) back to back for `seconds`: every
    latency, and the wall time from the common start to the last reply."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    deadline = [0.0]

    def client(k: int) -> None:
        conn = UnixHTTPConnection(engine.sock, 120)
        try:
            barrier.wait()
            i = 0
            while time.monotonic() < deadline[0] and not errors:
                started = time.perf_counter()
                request(conn, k, i)
                latencies[k].append(time.perf_counter() - started)
                i += 1
        except BaseException as exc:  # noqa: BLE001  (reported by the caller)
            errors.append(exc)
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{engine.label}: {errors[0]!r}")
    return [x for per_client in latencies for x in per_client], wall


def phases(engine: Engine, clients: int) -> dict[str, Callable[[UnixHTTPConnection, int, int], None]]:
    n = len(engine.ids)

    def listing(path: str) -> Callable[[UnixHTTPConnection, int, int], None]:
        def request(conn: UnixHTTPConnection, k: int, i: int) -> None:
            if len(call(conn, "GET", path)) != n:
                raise RuntimeError(f"{path} did not list {n} containers")
        return request

    def execute(conn: UnixHTTPConnection, k: int, i: int) -> None:
        cid = engine.ids[(k + i * clients) % n]
        exec_id = call(conn, "POST", f"/v1.41/containers/{cid}/exec", EXEC_BODY, 201)["Id"]
        exec_start(engine.sock, exec_id)
    return {"list": listing("/v1.41/containers/json"),
            "list-all": listing("/v1.41/containers/json?all=1"), "exec": execute}


def figures(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50": ordered[len(ordered) // 2] * 1000,
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max": ordered[-1] * 1000, "req/s": len(ordered) / wall, "n": len(ordered)}


def line(label: str, phase: str, f: dict[str, float]) -> str:
    return (f"{label:14s} {phase:9s} p50 {f['p50']:8.1f} ms  p99 {f['p99']:8.1f} ms  "
            f"max {f['max']:8.1f} ms  {f['req/s']:6.1f} req/s  CPU {f['cpu']:5.1f} ms/req  "
            f"(n={int(f['n'])})")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(engines: list[Engine], clients: int, seconds: float, runs: int) -> None:
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for run in range(1, runs + 1):
        print(f"run {run}/{runs}  (load average {loadavg()})", flush=True)
        for phase in ("list", "list-all", "exec"):
            for engine in engines:
                pids = engine.processes()
                cpu = cpu_seconds(pids)
                lat, wall = load(engine, clients, seconds, phases(engine, clients)[phase])
                f = figures(lat, wall)
                f["cpu"] = (cpu_seconds(pids) - cpu) / len(lat) * 1000
                results.setdefault((engine.label, phase), []).append(f)
                print("  " + line(engine.label, phase, f), flush=True)
    print(f"medians of {runs} runs, {clients} clients, {len(engines[0].ids)} containers, "
          f"{seconds:g} s per phase (load average {loadavg()}):")
    for phase in ("list", "list-all", "exec"):
        for engine in engines:
            per_run = results[(engine.label, phase)]
            print("  " + line(engine.label, phase, {
                key: statistics.median(f[key] for f in per_run) for key in per_run[0]}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=200, help="running containers per engine")
    p.add_argument("-c", type=int, default=50, help="concurrent clients")
    p.add_argument("-s", type=float, default=8, help="seconds per phase")
    p.add_argument("-r", type=int, default=3, help="runs")
    p.add_argument("--reference", action="store_true", help="also measure Docker 20.10")
    args = p.parse_args()
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that remove both engines
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    d = Daemon()
    ref = ReferenceEngine("i16-api-clients") if args.reference else None
    try:
        d.start()
        d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert d.proc is not None
        tetherd = d.proc.pid  # nsenter execs tetherd: the same process
        engines = [Engine("tetherd", d.sock, [], lambda: [tetherd])]
        if ref is not None:
            ref.start()
            engines.append(Engine("Docker 20.10", ref.host.removeprefix("unix://"), [],
                                  docker_processes(ref)))
        for engine in engines:
            started = time.perf_counter()
            create_containers(engine, args.n)
            print(f"{engine.label}: {args.n} containers running "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
        measure(engines, args.c, args.s, args.r)
    finally:
        if ref is not None:
            ref.stop()
        d.destroy()


if __name__ == "__main__":
    main()
