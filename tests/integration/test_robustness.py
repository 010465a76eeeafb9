"""tetherd under a burst of mixed load and abuse, then back to normal: 100 concurrent API calls
(ping, list, inspect, create/start/rm, logs) with 10 `logs -f` followers, half of which hang up
mid-stream; malformed HTTP (garbage, truncated, oversized headers); bodies that are not JSON or
far too large. Afterwards /_ping must answer within 50 ms, the daemon's memory must be back near
its level before the burst, and nothing the burst made may be left behind."""
from __future__ import annotations

import json
import random
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pytest

from harness import Daemon

pytestmark = pytest.mark.integration

CALLS = 100
FOLLOWERS = 10
RSS_SLACK_KB = 40 * 1024


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS) or at its highest so far (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def raw_exchange(daemon: Daemon, data: bytes, timeout: float = 15) -> bytes:
    """Send bytes as they are, half-close, and return everything the daemon answers."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(daemon.sock)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before taking all of it (a refused body)
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass  # closed with our bytes unread: the reply came before the reset
        return reply


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def post(path: str, body: bytes, ctype: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def mixed_call(daemon: Daemon, i: int, target: str) -> int:
    """One of the API calls a busy client mixes; returns the HTTP status that must be 2xx."""
    kind = i % 5
    if kind == 0:
        return daemon.api("GET", "/_ping")[0]
    if kind == 1:
        return daemon.api("GET", "/containers/json?all=1")[0]
    if kind == 2:
        return daemon.api("GET", f"/containers/{target}/json")[0]
    if kind == 3:
        return daemon.api("GET", f"/containers/{target}/logs?stdout=1&tail=5")[0]
    status, made = daemon.api("POST", "/containers/create",
                              {"Image": "busybox", "Cmd": ["true"], "Labels": {"robust": "1"}})
    if status != 201:
        return status
    started = daemon.api("POST", f"/containers/{made['Id']}/start")[0]
    removed = daemon.api("DELETE", f"/containers/{made['Id']}?force=1")[0]
    return started if started >= 300 else removed


def follower(daemon: Daemon, target: str, hang_up_early: bool, until: Callable[[], bool]) -> int:
    """A `logs -f` client; returns the bytes it read before hanging up."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(15)
        s.connect(daemon.sock)
        s.sendall(f"GET /containers/{target}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n"
                  .encode())
        seen = b""
        while not (hang_up_early and len(seen) > 200) and not (not hang_up_early and until()):
            chunk = s.recv(4096)
            assert chunk, "the log stream ended while the container still runs"
            seen += chunk
        assert seen.startswith(b"HTTP/1.1 200")
        return len(seen)


def abuse(daemon: Daemon) -> dict[str, int]:
    """Malformed and oversized requests; the status each got (0: closed without an answer)."""
    huge_header = b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: " + b"a" * 400_000 + b"\r\n\r\n"
    return {
        "garbage": status_of(raw_exchange(daemon, random.Random(5).randbytes(2000))),
        "truncated": status_of(raw_exchange(daemon, b"GET /containers/json HTTP/1.1\r\nHo")),
        "short body": status_of(raw_exchange(daemon, post("/containers/create", b'{"Ima')[:-2])),
        "huge header": status_of(raw_exchange(daemon, huge_header)),
        "not json": status_of(raw_exchange(daemon, post("/containers/create", b"{nope"))),
        "json list": status_of(raw_exchange(daemon, post("/containers/create", b"[1, 2]"))),
        "50 MB": status_of(raw_exchange(daemon, post("/containers/create",
                                                     b'{"Image": "' + b"x" * 50_000_000 + b'"}'),
                                        timeout=60)),
    }


def ping_ms(daemon: Daemon) -> float:
    started = time.perf_counter()
    assert daemon.api("GET", "/_ping")[0] == 200
    return (time.perf_counter() - started) * 1000


def test_burst_then_back_to_normal(fresh_daemon: Daemon) -> None:
    d = fresh_daemon
    assert d.proc is not None and Path(f"/proc/{d.proc.pid}/comm").read_text().startswith("tetherd")
    status, made = d.api("POST", "/containers/create?name=robust-talker", {
        "Image": "busybox", "Cmd": ["sh", "-c", "while true; do echo tick tock tick tock; sleep 0.02; done"]})
    assert status == 201, made
    talker = made["Id"]
    assert d.api("POST", f"/containers/{talker}/start")[0] == 204
    for i in range(10):  # warm-up: imports and caches the burst will also use
        mixed_call(d, i, talker)
    before = rss_kb(d.proc.pid)

    done = False
    with ThreadPoolExecutor(max_workers=24) as pool:
        follows = [pool.submit(follower, d, talker, i % 2 == 0, lambda: done)
                   for i in range(FOLLOWERS)]
        calls = [pool.submit(mixed_call, d, i, talker) for i in range(CALLS)]
        statuses = [c.result(timeout=120) for c in calls]
        abused = abuse(d)
        done = True
        read = [f.result(timeout=30) for f in follows]
    peak = rss_kb(d.proc.pid, "VmHWM")

    assert all(200 <= s < 300 for s in statuses), statuses
    assert all(n > 200 for n in read), read
    assert abused["huge header"] == 431, abused
    assert abused["not json"] == abused["json list"] == 400, abused
    assert abused["50 MB"] == 413, abused  # refused as it arrives, not buffered
    # cut-off requests get a 400 or just the close: either way no handler ever sees them
    assert {abused["garbage"], abused["truncated"], abused["short body"]} <= {0, 400}, abused

    time.sleep(1)
    pings = [ping_ms(d) for _ in range(5)]
    after = rss_kb(d.proc.pid)
    print(f"\nRSS before {before} kB, peak {peak} kB, settled {after} kB; "
          f"abuse answers {abused}; /_ping {statistics.median(pings):.1f} ms (median of 5)")
    assert statistics.median(pings) < 50, pings
    assert after - before < RSS_SLACK_KB, (before, peak, after)
    status, left = d.api("GET", "/containers/json?all=1&filters=" + quote(json.dumps({"label": ["robust=1"]})))
    assert status == 200 and left == []
    assert d.api("DELETE", f"/containers/{talker}?force=1")[0] == 204
    assert d.leaks(talker) == []
