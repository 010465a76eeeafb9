"""`POST /containers/{id}/attach?stream=1` on a container that is not running, and the head of
`GET /containers/{id}/logs`, compared with Docker 20.10 byte for byte.

dockerd answers such an attach at once (the head, and with `logs` the output so far), then
waits for the container's next start and streams that run's output until it exits. stdin sent
while it waits reaches the process once it starts. A start that fails ends the attach; a
removal does not: dockerd keeps the connection open, waiting for a start that cannot come,
until the client closes it.

The logs reply of Docker 20.10 (API up to 1.41) names no content type at all; the newer
versions' rule (raw for a TTY, multiplexed otherwise, from 1.42) is checked on tether alone,
as 20.10 answers those versions with a 400.
"""
from __future__ import annotations

import re
import socket
import time

import pytest

from reference import reference_fixture

pytestmark = pytest.mark.integration

NAME = "attach-wait"
SETTLE = 0.5  # lets the engine register the attach before the start (both engines need it)


ref = reference_fixture("attach-wait")


def _engines(daemon, ref) -> dict[str, tuple]:
    return {"tether": (daemon.docker, daemon.sock),
            "docker": (ref.docker, ref.host.removeprefix("unix://"))}


def _connect(sock: str, request: bytes) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(request)
    return s


def _attach_request(query: str) -> bytes:
    return (f"POST /v1.41/containers/{NAME}/attach?{query} HTTP/1.1\r\nHost: docker\r\n"
            "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n").encode()


def _read_to_close(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


# (create or run, docker arguments, attach query, stdin sent before and after the start)
CASES = {
    "created": ("create", ("busybox", "sh", "-c", "echo hello; sleep 0.2; echo err >&2"),
                "stream=1&stdout=1&stderr=1", b"", b""),
    "exited-logs": ("run", ("busybox", "sh", "-c", "echo hello; sleep 0.2; echo err >&2"),
                    "stream=1&logs=1&stdout=1&stderr=1", b"", b""),
    "exited-stdout-only": ("run", ("busybox", "sh", "-c", "echo hello; sleep 0.2; echo err >&2"),
                           "stream=1&logs=1&stdout=1", b"", b""),
    "tty": ("create", ("-t", "busybox", "sh", "-c", "echo hello; echo err >&2"),
            "stream=1&logs=1&stdout=1&stderr=1", b"", b""),
    "stdin": ("create", ("-i", "busybox", "cat"),
              "stream=1&stdin=1&stdout=1&stderr=1", b"before\n", b"after\n"),
    "failed-start": ("create", ("busybox", "/nonexistent"), "stream=1&stdout=1&stderr=1",
                     b"", b""),
}


@pytest.mark.parametrize("case", CASES)
def test_attach_waits_for_the_next_start_as_docker(daemon, ref, case: str) -> None:
    how, run_args, query, before, after = CASES[case]
    seen = {}
    for engine, (cli, sock) in _engines(daemon, ref).items():
        try:
            r = cli(how, "--name", NAME, *run_args)
            assert r.returncode == 0, r.stderr
            s = _connect(sock, _attach_request(query))
            try:
                time.sleep(SETTLE)
                s.sendall(before)
                cli("start", NAME)
                if after:
                    time.sleep(SETTLE)
                    s.sendall(after)
                    s.shutdown(socket.SHUT_WR)  # the end of stdin: cat exits
                seen[engine] = _read_to_close(s)
            finally:
                s.close()
        finally:
            cli("rm", "-f", NAME)
    assert seen["tether"] == seen["docker"]
    assert seen["tether"].startswith(b"HTTP/1.1 101 UPGRADED\r\n")


def test_removal_while_waiting_keeps_the_connection_as_docker(daemon, ref) -> None:
    seen = {}
    for engine, (cli, sock) in _engines(daemon, ref).items():
        try:
            assert cli("create", "--name", NAME, "busybox", "echo", "hi").returncode == 0
            s = _connect(sock, _attach_request("stream=1&logs=1&stdout=1&stderr=1"))
            try:
                time.sleep(SETTLE)
                assert cli("rm", NAME).returncode == 0
                s.settimeout(3)
                data = b""
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                    seen[engine] = (data, "closed")
                except TimeoutError:
                    seen[engine] = (data, "open")
            finally:
                s.close()
        finally:
            cli("rm", "-f", NAME)
    assert seen["tether"] == seen["docker"]
    assert seen["tether"][1] == "open"


def _logs_reply(sock: str, path: str) -> bytes:
    """The whole reply, its head normalised: Go sorts header lines (tether keeps its own order),
    the Date line goes, and Api-Version and Server values name the engine."""
    s = _connect(sock, f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
                 .encode())
    try:
        reply = _read_to_close(s)
    finally:
        s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    lines = sorted(re.sub(rb"^(Api-Version|Server): .*", rb"\1: *", line) for line in lines
                   if not line.startswith(b"Date:"))
    return b"\r\n".join([status, *lines]) + b"\r\n\r\n" + body


@pytest.mark.parametrize("tty", [False, True], ids=["framed", "tty"])
def test_logs_reply_below_1_42_as_docker(daemon, ref, tty: bool) -> None:
    seen = {}
    for engine, (cli, sock) in _engines(daemon, ref).items():
        try:
            r = cli("run", *(["-t"] if tty else []), "--name", NAME, "busybox", "echo", "hi")
            assert r.returncode == 0, r.stderr
            seen[engine] = [_logs_reply(sock, f"{version}/containers/{NAME}/logs?{query}")
                            for version in ("/v1.40", "/v1.41")
                            for query in ("stdout=1", "stdout=1&stderr=1&follow=1")]
        finally:
            cli("rm", "-f", NAME)
    assert seen["tether"] == seen["docker"]
    assert b"Content-Type" not in seen["tether"][0]


@pytest.mark.parametrize("tty, expected", [(False, "application/vnd.docker.multiplexed-stream"),
                                           (True, "application/vnd.docker.raw-stream")],
                         ids=["framed", "tty"])
def test_logs_content_type_from_1_42(daemon, tty: bool, expected: str) -> None:
    """Docker 20.10 refuses these versions; dockerd 23+ names the stream as checked here."""
    try:
        r = daemon.docker("run", *(["-t"] if tty else []), "--name", NAME, "busybox", "echo")
        assert r.returncode == 0, r.stderr
        for version in ("/v1.42", "/v1.44", ""):
            for follow in ("0", "1"):
                reply = _logs_reply(daemon.sock,
                                    f"{version}/containers/{NAME}/logs?stdout=1&follow={follow}")
                assert f"\r\nContent-Type: {expected}\r\n".encode() in reply
    finally:
        daemon.docker("rm", "-f", NAME)
