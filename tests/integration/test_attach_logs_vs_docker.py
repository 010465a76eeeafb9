"""`POST /containers/{id}/attach` with `logs` and without `stream`, compared with Docker 20.10:
docker-py's `attach(stream=False, logs=True)` (AttachContainerTest.test_attach_no_stream) reads
a stopped container's output this way.

dockerd answers with the output so far (framed, or raw for a TTY) when `logs` is set, then the
live output when `stream` is set, and closes the connection; nothing at all from a log driver
that cannot be read, or when no stream is chosen. The whole reply (status, content type, body)
is compared byte for byte. (With `stream` on a stopped container dockerd waits for its next
start: test_attach_wait_vs_docker.py.)
"""
from __future__ import annotations

import http.client
import re
import socket
import time

import docker
import pytest

from reference import reference_fixture

pytestmark = pytest.mark.integration

QUERIES = ["logs=1&stdout=1&stderr=1&stream=0", "logs=1&stdout=1&stream=0",
           "logs=1&stderr=1&stream=0", "logs=0&stdout=1&stderr=1&stream=0", "logs=1&stream=0"]


ref = reference_fixture("attach-logs")


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def _attach(sock: str, name: str, query: str, version: str = "/v1.41") -> tuple[int, str, bytes]:
    """The attach reply as a client without an Upgrade header gets it, read to the close; at
    Docker 20.10's API version unless told (the content type depends on it)."""
    conn = _Unix(sock)
    try:
        conn.request("POST", f"{version}/containers/{name}/attach?{query}")
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _engines(daemon, ref) -> dict[str, tuple]:
    return {"tether": (daemon.docker, daemon.sock),
            "docker": (ref.docker, ref.host.removeprefix("unix://"))}


@pytest.mark.parametrize("run_args", [
    # the pauses order the lines in the log: two pipes, read apart, race otherwise
    ("busybox", "sh", "-c", "echo hello; sleep 0.2; echo err >&2; sleep 0.2; echo bye"),
    ("-t", "busybox", "sh", "-c", "echo hello; echo err >&2"),
    ("--log-driver", "none", "busybox", "echo", "hello"),
], ids=["framed", "tty", "no-log"])
def test_attach_to_a_stopped_container_as_docker(daemon, ref, run_args) -> None:
    seen = {}
    for engine, (cli, sock) in _engines(daemon, ref).items():
        try:
            r = cli("run", "--name", "attach-logs", *run_args)
            assert r.returncode == 0, r.stderr
            seen[engine] = [_attach(sock, "attach-logs", query) for query in QUERIES]
        finally:
            cli("rm", "-f", "attach-logs")
    assert seen["tether"] == seen["docker"]


def _logged(cli, name: str, expected: bytes) -> None:
    """Wait until the container's log holds `expected` (written, and read by the engine)."""
    for _ in range(100):
        if cli("logs", name).stdout == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never logged {expected!r}")


def test_logs_then_live_output_as_docker(daemon, ref) -> None:
    """Output written before the attach comes from the log, the rest from the stream."""
    seen = {}
    for engine, (cli, sock) in _engines(daemon, ref).items():
        try:
            cli("run", "-d", "--name", "attach-logs", "busybox", "sh", "-c",
                "echo one; sleep 2; echo two")
            _logged(cli, "attach-logs", b"one\n")
            seen[engine] = _attach(sock, "attach-logs", "logs=1&stdout=1&stderr=1&stream=1")
        finally:
            cli("rm", "-f", "attach-logs")
    assert seen["tether"] == seen["docker"]
    assert seen["tether"][2] == b"\x01\0\0\0\0\0\0\x04one\n\x01\0\0\0\0\0\0\x04two\n"


def test_sdk_attach_without_stream(daemon) -> None:
    """docker-py's AttachContainerTest.test_attach_no_stream."""
    client = docker.DockerClient(base_url=daemon.host)
    try:
        container = client.api.create_container("busybox", "echo hello")
        client.api.start(container)
        client.api.wait(container, condition="not-running")
        assert client.api.attach(container, stream=False, logs=True) == b"hello\n"
    finally:
        client.api.remove_container(container, force=True)
        client.close()


def _upgraded_content_type(sock: str, path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(sock)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
                  "Upgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
        head = s.makefile("rb").read().partition(b"\r\n\r\n")[0].decode()
    return re.search(r"\r\nContent-Type: ([^\r]*)", head).group(1)


def test_content_type_follows_the_api_version(daemon) -> None:
    """dockerd 23+ names the framed stream multiplexed from API 1.42 on (raw before), in its
    101 only: the plain 200 for a client without Upgrade says raw whatever the version."""
    try:
        assert daemon.docker("run", "--name", "attach-logs", "busybox", "true").returncode == 0
        query = "logs=1&stdout=1&stream=0"
        for version in ("/v1.41", "/v1.42", "/v1.44", ""):
            assert _attach(daemon.sock, "attach-logs", query, version)[1] == \
                "application/vnd.docker.raw-stream"
        path = f"/containers/attach-logs/attach?{query}"
        assert _upgraded_content_type(daemon.sock, "/v1.41" + path) == \
            "application/vnd.docker.raw-stream"
        for version in ("/v1.42", "/v1.44", ""):
            assert _upgraded_content_type(daemon.sock, version + path) == \
                "application/vnd.docker.multiplexed-stream"
    finally:
        daemon.docker("rm", "-f", "attach-logs")
