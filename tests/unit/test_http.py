"""Tests of tetherd's HTTP layer: a real server on a temp unix socket, driven by raw sockets,
http.client and (if present) the docker CLI. The server runs in its own thread and event loop,
so the tests can use plain blocking sockets."""
from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import logging
import os
import shutil
import socket
import stat
import struct
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.api import http as http_module
from tether.api import streams
from tether.api.http import (API_VERSION, MIN_API_VERSION, Hijack, HijackedConn, Request, Response,
                             Router, StreamResponse, json_response, no_content, parse_filters,
                             serve)
from tether.rules.errors import (INTERNAL_ERROR, BadRequest, Conflict, NotFound, NotModified,
                                 hide_paths)

TIMEOUT = 5.0
STANDARD = {"api-version": "1.44", "ostype": "linux", "docker-experimental": "false"}


# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------

class ServerThread:
    """serve() in a thread with its own loop; asyncio.run cancels leftover tasks at the end."""

    def __init__(self, router: Router, path: str) -> None:
        self.router = router
        self.path = path
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await serve(self.router, self.path, os.getgid())
        self._ready.set()
        await self._stop.wait()
        server.close()
        await server.wait_closed()

    def call_soon(self, fn: Callable[[], Any]) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(TIMEOUT), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.call_soon(self._stop.set)
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "server thread did not stop"


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _read_chunked(f: BinaryIO) -> bytes:
    parts = []
    while True:
        size = int(f.readline().split(b";")[0], 16)
        if size == 0:
            f.readline()
            return b"".join(parts)
        parts.append(f.read(size))
        assert f.read(2) == b"\r\n"


def read_reply(f: BinaryIO, head_only: bool = False) -> Reply:
    """A tiny exact response parser, so pipelined replies on one buffered file are not lost."""
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    _, status, reason = line.decode().rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := f.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only:
        body = b""
    elif headers.get("transfer-encoding") == "chunked":
        body = _read_chunked(f)
    else:
        body = f.read(int(headers.get("content-length", "0")))
    return Reply(int(status), reason, headers, body)


class RawClient:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def get(self, path: str, method: str = "GET", extra: str = "") -> Reply:
        self.send(f"{method} {path} HTTP/1.1\r\nHost: api.moby.localhost\r\n{extra}\r\n".encode())
        return read_reply(self.f, head_only=method == "HEAD")

    def at_eof(self) -> bool:
        return self.f.read1(65536) == b""

    def close(self) -> None:
        self.f.close()
        self.sock.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("api.moby.localhost", timeout=TIMEOUT)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "tether.sock")


@pytest.fixture
def raw_clients() -> Iterator[list[RawClient]]:
    clients: list[RawClient] = []
    yield clients
    for client in clients:
        client.close()


class Probe:
    """Cross-thread signals between a test and the handlers it drives."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # binds to the server loop on first wait
        self.closed = threading.Event()
        self.requests: list[Request] = []


HIDDEN_ROOT = "/srv/tether-data"


def make_router(probe: Probe) -> Router:
    router = Router(hide=lambda text: hide_paths(text, (HIDDEN_ROOT + "/",)))

    async def ping(req: Request) -> Response:
        return Response(200, b"OK", "text/plain; charset=utf-8",
                        {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"})

    async def version(req: Request) -> Response:
        return json_response({"Version": "0.1.0", "ApiVersion": API_VERSION,
                              "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": "amd64",
                              "GitCommit": "test", "GoVersion": "n/a", "KernelVersion": "test",
                              "Experimental": False, "BuildTime": "",
                              "Components": [{"Name": "Engine", "Version": "0.1.0",
                                              "Details": {"ApiVersion": API_VERSION}}]})

    async def echo(req: Request) -> Response:
        probe.requests.append(req)
        return json_response({"path": req.path, "version": req.api_version, "params": req.params,
                              "query": req.query, "body": req.body.decode("latin-1"),
                              "method": req.method})

    async def spooled(req: Request) -> Response:
        probe.requests.append(req)
        data = req.body_stream().read()
        return json_response({"size": len(data), "sha": hashlib.sha256(data).hexdigest(),
                              "on_disk": req.content._rolled})  # type: ignore[attr-defined]

    async def fail(req: Request) -> Response:
        raise RuntimeError(f"kaboom in {HIDDEN_ROOT}/x")

    async def leak(req: Request) -> Response:
        raise BadRequest(f"lstat {HIDDEN_ROOT}/overlay/c1/merged/etc/passwd/sub: not a directory")

    async def missing(req: Request) -> Response:
        raise NotFound("No such container: nope")

    async def conflict(req: Request) -> Response:
        raise Conflict("container is running")

    async def unchanged(req: Request) -> Response:
        raise NotModified()

    async def started(req: Request) -> Response:
        return no_content()

    async def stream(req: Request) -> StreamResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                for i in range(req.qint("count", 0)):
                    yield b'{"n":%d}\n' % i
                if req.qbool("hold"):
                    await probe.release.wait()
                    yield b'{"released":true}\n'
                    await asyncio.Event().wait()  # idle until the client leaves
                if req.qbool("fail"):
                    raise RuntimeError("stream broke")
            finally:
                probe.closed.set()
        return StreamResponse(chunks(), None if req.qbool("untyped") else "application/json")

    async def attach(req: Request) -> Hijack:
        async def run(conn: HijackedConn) -> None:
            await conn.write(streams.frame(streams.STDERR, req.body))
            received = 0
            while data := await conn.read():
                received += len(data)
                await conn.write(streams.frame(streams.STDOUT, data))
            await conn.write(streams.frame(streams.STDERR, b"EOF after %d" % received))
        return Hijack(run, streams.MULTIPLEXED, standard_headers=not req.qbool("bare"))

    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/containers/json", echo)
    router.add("GET", "/containers/{id}/json", echo)
    router.add("DELETE", "/containers/{id}", echo)
    router.add("GET", "/images/{name:path}/json", echo)
    router.add("POST", "/echo", echo)
    router.add("POST", "/spooled", spooled)
    router.add("GET", "/fail", fail)
    router.add("GET", "/leak", leak)
    router.add("GET", "/missing", missing)
    router.add("GET", "/conflict", conflict)
    router.add("POST", "/containers/{id}/start", unchanged)
    router.add("POST", "/containers/{id}/restart", started)
    router.add("GET", "/stream", stream)
    router.add("POST", "/containers/{id}/attach", attach)
    return router


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def server(sock_path: str, probe: Probe) -> Iterator[ServerThread]:
    with ServerThread(make_router(probe), sock_path) as srv:
        yield srv


@pytest.fixture
def client(server: ServerThread, raw_clients: list[RawClient]) -> RawClient:
    raw = RawClient(server.path)
    raw_clients.append(raw)
    return raw


def assert_standard_headers(headers: dict[str, str]) -> None:
    for name, value in STANDARD.items():
        assert headers.get(name) == value, name
    assert headers.get("server", "").startswith("tether/")


# ---------------------------------------------------------------------------------------------
# Pure parts: Request helpers, Router, frame
# ---------------------------------------------------------------------------------------------

def request(query: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
            body: bytes = b"") -> Request:
    return Request("GET", "/x", None, query or {}, headers or {}, io.BytesIO(body))


@pytest.mark.parametrize("value", ["", "0", "no", "false", "none", "FALSE", "No", " None "])
def test_qbool_false_words(value: str) -> None:
    assert request({"all": [value]}).qbool("all", default=True) is False


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "anything"])
def test_qbool_true_words(value: str) -> None:
    assert request({"all": [value]}).qbool("all") is True


def test_qbool_missing_gives_default() -> None:
    assert request().qbool("all", default=True) is True
    assert request().qbool("all") is False


def test_q_takes_first_value_and_default() -> None:
    req = request({"names": ["a", "b"]})
    assert req.q("names") == "a"
    assert req.q("other", "dflt") == "dflt"


def test_qint_parses_and_defaults() -> None:
    assert request({"limit": ["-1"]}).qint("limit") == -1
    assert request({"t": ["+7"]}).qint("t") == 7
    assert request({"t": [""]}).qint("t", 10) == 10
    assert request().qint("t", 10) == 10


@pytest.mark.parametrize(("value", "message"), [
    ("x", 'strconv.Atoi: parsing "x": invalid syntax'),
    ("1.5", 'strconv.Atoi: parsing "1.5": invalid syntax'),
    (" 5", 'strconv.Atoi: parsing " 5": invalid syntax'),
    ("1_000", 'strconv.Atoi: parsing "1_000": invalid syntax'),
    ("99999999999999999999", 'strconv.Atoi: parsing "99999999999999999999": value out of range'),
])
def test_qint_garbage_is_400_with_go_text(value: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        request({"limit": [value]}).qint("limit")
    assert info.value.message == message


def test_json_body() -> None:
    assert request(body=b'{"Image":"busybox"}').json() == {"Image": "busybox"}
    assert request(body=b"").json() is None
    assert request(body=b"  \n").json() is None
    with pytest.raises(BadRequest, match="^invalid character 'b' looking for beginning of "
                                         "object key string$"):
        request(body=b"{bad").json()
    assert request(body=b'{"a":1} trailing').json() == {"a": 1}  # as Go's json.Decoder


def test_filters_both_shapes() -> None:
    cli = request({"filters": ['{"name":{"web":true},"status":{"running":true,"exited":true}}']})
    assert cli.filters() == {"name": ["web"], "status": ["running", "exited"]}
    py = request({"filters": ['{"name":["web"],"label":["a=b","c"]}']})
    assert py.filters() == {"name": ["web"], "label": ["a=b", "c"]}
    assert request().filters() == {}
    assert request({"filters": [""]}).filters() == {}


@pytest.mark.parametrize(("raw", "message"), [  # Docker 20.10's texts (it answers 500)
    ("zz", "invalid character 'z' looking for beginning of value"),
    ("{x", "invalid character 'x' looking for beginning of object key string"),
    ('{"name"', "unexpected end of JSON input"),
    ('{"name":{}} x', "invalid character 'x' after top-level value"),
    ("[1]", "json: cannot unmarshal array into Go value of type map[string]map[string]bool"),
    ('{"name":5}', "json: cannot unmarshal number into Go value of type map[string]bool"),
    ('{"name":"web"}', "json: cannot unmarshal string into Go value of type map[string]bool"),
    ('{"name":[1]}', "json: cannot unmarshal array into Go value of type map[string]bool"),
    ('{"name":{"web":"yes"}}', "json: cannot unmarshal string into Go value of type bool"),
])
def test_filters_malformed_is_400_with_gos_text(raw: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_filters(raw)
    assert info.value.message == message


@pytest.mark.parametrize(("headers", "expected"), [
    ({"connection": "Upgrade", "upgrade": "tcp"}, True),
    ({"connection": "keep-alive, upgrade", "upgrade": "tcp"}, True),
    ({"connection": "Upgrade"}, False),
    ({"upgrade": "tcp"}, False),
    ({}, False),
])
def test_wants_upgrade(headers: dict[str, str], expected: bool) -> None:
    assert request(headers=headers).wants_upgrade is expected


async def _noop(req: Request) -> Response:
    return no_content()


async def _other(req: Request) -> Response:
    return no_content()


def test_error_messages_hide_the_daemons_private_paths(
        client: RawClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tether.api.http")
    reply = client.get("/leak")
    assert (reply.status, reply.json()) == (400, {"message": "lstat <host path>: not a directory"})
    assert any("/merged/etc/passwd/sub" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("message", "public"), [
    ("open /d/x/y: no such file", "open <host path>: no such file"),
    ("'/d' and \"/d/z\"", "'<host path>' and \"<host path>\""),
    ("/d2/x and /data/x and d/x", "/d2/x and /data/x and d/x"),
    ("/e/run/c.sock, /d", "<host path>, <host path>"),
    ("mount /src:/d/volumes/v/_data, flags: 0x1000", "mount /src:/d/volumes/v/_data, flags: 0x1000"),
    ("(/d/volumes2/x)", "(<host path>)"),
])
def test_hide_paths(message: str, public: str) -> None:
    assert hide_paths(message, ("/d", "/e/"), ("/d/volumes",)) == public
    assert hide_paths(message, ()) == message


def test_router_params_path_and_decoding() -> None:
    router = Router()
    router.add("GET", "/containers/{id}/json", _noop)
    router.add("GET", "/images/{name:path}/json", _other)
    router.add("GET", "/images/json", _noop)
    assert router.resolve("GET", "/containers/abc/json") == (_noop, {"id": "abc"})
    assert router.resolve("GET", "/containers/a%20b/json") == (_noop, {"id": "a b"})
    assert router.resolve("GET", "/images/library/busybox/json") == (
        _other, {"name": "library/busybox"})
    assert router.resolve("GET", "/images/localhost:5000/a/b:1.0/json") == (
        _other, {"name": "localhost:5000/a/b:1.0"})
    assert router.resolve("GET", "/images/json") == (_noop, {})


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/containers/abc"), ("GET", "/containers//json"), ("POST", "/containers/abc/json"),
    ("GET", "/containers/a/b/json"), ("GET", "/images//json"), ("GET", "/nothing"),
])
def test_router_not_found(method: str, path: str) -> None:
    router = Router()
    router.add("GET", "/containers/{id}/json", _noop)
    router.add("GET", "/images/{name:path}/json", _noop)
    with pytest.raises(NotFound, match="^page not found$"):
        router.resolve(method, path)


@pytest.mark.parametrize("pattern", ["containers", "/a/{id", "/a/{id:int}", "/a/}"])
def test_router_rejects_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        Router().add("GET", pattern, _noop)


def test_frame_header_layout() -> None:
    assert streams.frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert streams.frame(2, b"x" * 300)[:8] == bytes([2, 0, 0, 0, 0, 0, 1, 44])
    assert streams.frame(1, b"") == b""


def test_frame_splits_large_payloads() -> None:
    payload = bytes(range(256)) * ((streams.MAX_FRAME * 2 + 100) // 256 + 1)
    framed = streams.frame(1, payload)
    pos, rebuilt, count = 0, b"", 0
    while pos < len(framed):
        kind, size = struct.unpack(">BxxxL", framed[pos:pos + 8])
        assert kind == 1 and size <= streams.MAX_FRAME
        rebuilt += framed[pos + 8:pos + 8 + size]
        pos += 8 + size
        count += 1
    assert rebuilt == payload and count == 3


def test_frame_rejects_unknown_stream() -> None:
    with pytest.raises(ValueError):
        streams.frame(4, b"x")


# ---------------------------------------------------------------------------------------------
# Plain requests
# ---------------------------------------------------------------------------------------------

def test_versioned_and_unversioned_paths(client: RawClient) -> None:
    reply = client.get("/v1.44/containers/abc%2Fd/json?all=1&filters=%7B%7D&all=0")
    assert reply.status == 200
    assert reply.json() == {"path": "/containers/abc%2Fd/json", "version": "1.44",
                            "params": {"id": "abc/d"}, "query": {"all": ["1", "0"], "filters": ["{}"]},
                            "body": "", "method": "GET"}
    plain = client.get("/containers/abc/json").json()
    assert plain["version"] is None and plain["params"] == {"id": "abc"}
    assert client.get("/v1.24/images/library/busybox/json").json()["params"] == {
        "name": "library/busybox"}


@pytest.mark.parametrize(("version", "message"), [
    ("1.45", "client version 1.45 is too new. Maximum supported API version is 1.44"),
    ("2.0", "client version 2.0 is too new. Maximum supported API version is 1.44"),
    ("1.23", "client version 1.23 is too old. Minimum supported API version is 1.24, "
             "please upgrade your client to a newer version"),
])
def test_unsupported_versions(client: RawClient, version: str, message: str) -> None:
    reply = client.get(f"/v{version}/version")
    assert reply.status == 400
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"message": message}
    assert_standard_headers(reply.headers)


def test_unknown_route_and_wrong_method_are_page_not_found(client: RawClient) -> None:
    for method, path in [("GET", "/nope"), ("GET", "/v1.44/nope"), ("PUT", "/version"),
                         ("POST", "/v1.44/containers/x/json"), ("GET", "/v1.99/nope")]:
        reply = client.get(path, method)
        assert (reply.status, reply.json()) == (404, {"message": "page not found"}), path
        assert reply.headers["content-type"] == "application/json"
        assert_standard_headers(reply.headers)


def test_api_errors_become_json(client: RawClient) -> None:
    missing = client.get("/missing")
    assert (missing.status, missing.json()) == (404, {"message": "No such container: nope"})
    assert missing.headers["content-type"] == "application/json"
    conflict = client.get("/conflict")
    assert (conflict.status, conflict.json()) == (409, {"message": "container is running"})


def test_unexpected_exception_is_500_logged_and_connection_survives(
        client: RawClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tether.api.http")
    reply = client.get("/fail")
    assert (reply.status, reply.json()) == (500, {"message": INTERNAL_ERROR})
    assert reply.headers["content-type"] == "application/json"
    assert_standard_headers(reply.headers)
    assert any(r.exc_info and "kaboom" in str(r.exc_info[1]) for r in caplog.records)
    assert client.get("/_ping").body == b"OK"


def test_304_and_204_have_no_body(client: RawClient) -> None:
    unchanged = client.get("/containers/x/start", "POST", "Content-Length: 0\r\n")
    assert unchanged.status == 304 and unchanged.body == b""
    assert "content-type" not in unchanged.headers and "content-length" not in unchanged.headers
    assert_standard_headers(unchanged.headers)
    done = client.get("/containers/x/restart", "POST")
    assert done.status == 204 and done.body == b""
    assert client.get("/_ping").body == b"OK"  # framing stayed in step


def test_ping_head_and_get_with_http_client(server: ServerThread) -> None:
    conn = UnixHTTPConnection(server.path)
    try:
        conn.request("HEAD", "/_ping")
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        assert_standard_headers({k.lower(): v for k, v in head.getheaders()})
        assert head.getheader("Pragma") == "no-cache"
        conn.request("GET", "/_ping")
        get = conn.getresponse()
        assert (get.status, get.read()) == (200, b"OK")
        assert get.getheader("Content-Type") == "text/plain; charset=utf-8"
    finally:
        conn.close()


def test_keep_alive_many_requests_one_connection(server: ServerThread) -> None:
    conn = UnixHTTPConnection(server.path)
    try:
        for i in range(20):
            conn.request("POST", f"/v1.44/echo?i={i}", body=json.dumps({"i": i}),
                         headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            assert reply.status == 200
            assert json.loads(json.loads(reply.read())["body"]) == {"i": i}
        first_sock = conn.sock
        conn.request("GET", "/version")
        assert json.loads(conn.getresponse().read())["ApiVersion"] == "1.44"
        assert conn.sock is first_sock
    finally:
        conn.close()


def test_pipelined_requests_in_one_packet(client: RawClient) -> None:
    one = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    two = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    client.send(one + two + one)
    assert read_reply(client.f).body == b"OK"
    assert read_reply(client.f).json()["body"] == "abc"
    assert read_reply(client.f).body == b"OK"


def test_chunked_request_body(client: RawClient) -> None:
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
    assert read_reply(client.f).json()["body"] == "hello, world"
    assert client.get("/_ping").body == b"OK"


def test_a_large_body_is_spooled_to_disk_and_released(client: RawClient, probe: Probe, monkeypatch) -> None:
    """An archive body beyond SPOOL_IN_MEMORY goes to an unnamed file, not into memory, and
    the file is closed once the reply is out; a small one stays in memory."""
    monkeypatch.setattr(http_module, "SPOOL_IN_MEMORY", 4096)
    for size, on_disk in ((4096, False), (300_000, True)):
        data = os.urandom(size)
        client.send(b"POST /spooled HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
                    b"Content-Length: %d\r\n\r\n" % size + data)
        assert read_reply(client.f).json() == {"size": size, "sha": hashlib.sha256(data).hexdigest(),
                                               "on_disk": on_disk}
        assert client.get("/_ping").body == b"OK"  # the connection goes on, the reply was sent
        assert probe.requests[-1].content.closed


def test_expect_100_continue(client: RawClient) -> None:
    client.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    interim = read_reply(client.f, head_only=True)
    assert interim.status == 100
    client.send(b"data")
    assert read_reply(client.f).json()["body"] == "data"


def test_connection_close_is_honoured(client: RawClient) -> None:
    reply = client.get("/_ping", extra="Connection: close\r\n")
    assert reply.body == b"OK"
    assert client.at_eof()


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------

def test_stream_headers_arrive_before_first_chunk(server: ServerThread, client: RawClient,
                                                  probe: Probe) -> None:
    client.send(b"GET /v1.44/stream?hold=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    head = read_reply(client.f, head_only=True)  # would time out if headers waited for a chunk
    assert head.status == 200
    assert head.headers["transfer-encoding"] == "chunked"
    assert head.headers["content-type"] == "application/json"
    assert_standard_headers(head.headers)
    assert not probe.closed.is_set()
    server.call_soon(probe.release.set)
    size = int(client.f.readline(), 16)
    assert client.f.read(size) == b'{"released":true}\n'
    client.close()
    assert probe.closed.wait(TIMEOUT), "iterator not closed after the client left"


def test_idle_stream_notices_disconnect(client: RawClient, probe: Probe) -> None:
    client.send(b"GET /stream?hold=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_reply(client.f, head_only=True).status == 200
    client.close()  # the iterator is blocked in release.wait(): only the EOF watch can see this
    assert probe.closed.wait(TIMEOUT), "iterator not closed while idle"


def test_server_shutdown_closes_active_streams(sock_path: str, probe: Probe,
                                               raw_clients: list[RawClient]) -> None:
    with ServerThread(make_router(probe), sock_path):
        raw = RawClient(sock_path)
        raw_clients.append(raw)
        raw.send(b"GET /stream?hold=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(raw.f, head_only=True).status == 200
    assert probe.closed.is_set()


def test_finished_stream_keeps_connection(client: RawClient, probe: Probe) -> None:
    reply = client.get("/stream?count=3")
    assert reply.body == b'{"n":0}\n{"n":1}\n{"n":2}\n'
    assert probe.closed.is_set()
    assert client.get("/_ping").body == b"OK"


def test_failing_stream_is_logged_and_left_unterminated(
        client: RawClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tether.api.http")
    client.send(b"GET /stream?count=1&fail=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_reply(client.f, head_only=True).status == 200
    rest = b""
    while data := client.f.read1(65536):
        rest += data
    assert rest.startswith(b'8\r\n{"n":0}\n\r\n') and b"0\r\n\r\n" not in rest
    assert any(r.exc_info and "stream broke" in str(r.exc_info[1]) for r in caplog.records)


def test_stream_with_http_client(server: ServerThread) -> None:
    conn = UnixHTTPConnection(server.path)
    try:
        conn.request("GET", "/stream?count=2")
        reply = conn.getresponse()
        assert reply.read() == b'{"n":0}\n{"n":1}\n'
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Hijack
# ---------------------------------------------------------------------------------------------

def read_frames(f: BinaryIO, count: int) -> list[tuple[int, bytes]]:
    frames = []
    for _ in range(count):
        kind, size = struct.unpack(">BxxxL", f.read(8))
        frames.append((kind, f.read(size)))
    return frames


def test_hijack_upgrade_stdin_half_close(client: RawClient) -> None:
    body = b'{"Detach":false,"Tty":false}'
    client.send(b"POST /v1.44/containers/c1/attach?stream=1&stdin=1 HTTP/1.1\r\n"
                b"Host: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body + b"early stdin")
    status_line = client.f.readline()
    assert status_line == b"HTTP/1.1 101 UPGRADED\r\n"
    head = read_reply_headers(client.f)
    assert head["content-type"] == streams.MULTIPLEXED
    assert head["connection"] == "Upgrade" and head["upgrade"] == "tcp"
    assert_standard_headers(head)
    assert read_frames(client.f, 2) == [(2, body), (1, b"early stdin")]
    client.send(b"more")
    assert read_frames(client.f, 1) == [(1, b"more")]
    client.sock.shutdown(socket.SHUT_WR)
    assert read_frames(client.f, 1) == [(2, b"EOF after 15")]
    assert client.at_eof()


def read_reply_headers(f: BinaryIO) -> dict[str, str]:
    headers = {}
    while (line := f.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    return headers


def test_hijack_without_upgrade_gets_200(client: RawClient) -> None:
    client.send(b"POST /containers/c1/attach HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nabc")
    assert client.f.readline() == b"HTTP/1.1 200 OK\r\n"
    head = read_reply_headers(client.f)
    assert head["content-type"] == streams.MULTIPLEXED and "upgrade" not in head
    client.sock.shutdown(socket.SHUT_WR)
    assert read_frames(client.f, 2) == [(1, b"abc"), (2, b"EOF after 3")]  # empty body: no frame
    assert client.at_eof()


def test_bare_hijack_head_is_the_status_type_and_switch_alone(client: RawClient) -> None:
    """Attach's head as dockerd writes it: no Api-Version, Server or other standard header."""
    client.send(b"POST /containers/c1/attach?bare=1 HTTP/1.1\r\nHost: x\r\n"
                b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
    client.sock.shutdown(socket.SHUT_WR)
    head = b"".join(iter(client.f.readline, b"\r\n"))
    assert head == (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: " + streams.MULTIPLEXED.encode()
                    + b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n")
    assert read_frames(client.f, 1) == [(2, b"EOF after 0")]


def test_stream_without_a_content_type(client: RawClient) -> None:
    client.send(b"GET /stream?count=1&untyped=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.f.readline() == b"HTTP/1.1 200 OK\r\n"
    head = read_reply_headers(client.f)
    assert "content-type" not in head and head["transfer-encoding"] == "chunked"
    assert_standard_headers(head)


@pytest.mark.parametrize("tty, version, upgrade, expected", [
    (False, (1, 41), True, streams.RAW), (False, (1, 42), True, streams.MULTIPLEXED),
    (False, (1, 44), False, streams.RAW), (True, (1, 44), True, streams.RAW),
])
def test_attach_content_type(tty: bool, version: tuple[int, int], upgrade: bool,
                             expected: str) -> None:
    assert streams.attach_content_type(tty, version, upgrade) == expected


@pytest.mark.parametrize("tty, version, expected", [
    (False, (1, 41), None), (True, (1, 24), None),
    (False, (1, 42), streams.MULTIPLEXED), (True, (1, 44), streams.RAW),
])
def test_logs_content_type(tty: bool, version: tuple[int, int], expected: str | None) -> None:
    assert streams.logs_content_type(tty, version) == expected


def test_hijack_immediate_half_close(client: RawClient) -> None:
    """`docker exec` without -i half-closes right after the 101; output must still arrive."""
    client.send(b"POST /containers/c1/attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                b"Upgrade: tcp\r\n\r\n")
    client.sock.shutdown(socket.SHUT_WR)
    assert client.f.readline() == b"HTTP/1.1 101 UPGRADED\r\n"
    read_reply_headers(client.f)
    assert read_frames(client.f, 1) == [(2, b"EOF after 0")]
    assert client.at_eof()


# ---------------------------------------------------------------------------------------------
# Malformed input
# ---------------------------------------------------------------------------------------------

def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def assert_serving(path: str) -> None:
    probe_client = RawClient(path)
    try:
        assert probe_client.get("/_ping").body == b"OK"
    finally:
        probe_client.close()


@pytest.mark.parametrize(("payload", "status"), [
    (b"\x00\x01\x02garbage\r\n\r\n", 400),
    (b"GET /_ping HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 400),
    (b"GET /_ping HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 400),
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 400),  # then EOF
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400),
])
def test_malformed_requests_get_json_400_and_close(server: ServerThread, payload: bytes,
                                                   status: int) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(server.path)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), data
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["message"].startswith("malformed HTTP request")
    assert_serving(server.path)


def test_huge_headers_are_refused(server: ServerThread) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(server.path)
        try:
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 400_000 + b"\r\n\r\n")
        except OSError:
            pass  # the server may close before reading everything
        data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 431 "), data[:100]
    assert_serving(server.path)


def test_truncated_request_then_disconnect(server: ServerThread) -> None:
    for partial in (b"GET /_pi", b"GET /_ping HTTP/1.1\r\nHost: x\r\n", b""):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(server.path)
            sock.sendall(partial)
    assert_serving(server.path)


HTTPISH = [b"GET / HTTP/1.1\r\n", b"POST /echo HTTP/1.1\r\nHost: x\r\n",
           b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
           b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=3000),
                      st.builds(bytes.__add__, st.sampled_from(HTTPISH), st.binary(max_size=300))))
def test_fuzz_never_kills_the_server(fuzz_server: ServerThread, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(fuzz_server.path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = read_all(sock)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 ")
    assert_serving(fuzz_server.path)


@pytest.fixture
def fuzz_server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(make_router(Probe()), str(tmp_path / "fuzz.sock")) as srv:
        yield srv


# ---------------------------------------------------------------------------------------------
# serve(): the socket file
# ---------------------------------------------------------------------------------------------

def test_serve_sets_mode_and_replaces_stale_socket(tmp_path: Path, probe: Probe) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: what a killed daemon leaves
    with ServerThread(make_router(probe), path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert_serving(path)


def test_serve_refuses_live_socket_and_plain_file(tmp_path: Path, probe: Probe) -> None:
    live = str(tmp_path / "live.sock")
    with ServerThread(make_router(probe), live):
        with pytest.raises(OSError, match="in use"):
            with ServerThread(make_router(probe), live):
                pass
        assert_serving(live)
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    with pytest.raises(FileExistsError):
        with ServerThread(make_router(probe), str(plain)):
            pass
    assert plain.read_text() == "keep me"


# ---------------------------------------------------------------------------------------------
# The real docker CLI
# ---------------------------------------------------------------------------------------------

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


@pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason="docker CLI not installed")
def test_docker_cli_negotiates_1_44(server: ServerThread, probe: Probe, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "DOCKER_HOST": f"unix://{server.path}", "DOCKER_CONFIG": str(tmp_path / "cfg")}
    result = subprocess.run(
        [DOCKER, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}"],
        env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.44 1.44"
    subprocess.run([DOCKER, "ps"], env=env, capture_output=True, timeout=30)
    assert (probe.requests[-1].path, probe.requests[-1].api_version) == ("/containers/json", "1.44")


def test_docker_py_negotiates_and_pings(server: ServerThread, probe: Probe) -> None:
    docker = pytest.importorskip("docker")
    api = docker.APIClient(base_url=f"unix://{server.path}", version="auto", timeout=TIMEOUT)
    try:
        assert api.api_version == "1.44"
        assert api.ping() is True
        api.containers()  # any versioned call: the echo handler records its path
        assert (probe.requests[-1].path, probe.requests[-1].api_version) == (
            "/containers/json", "1.44")
    finally:
        api.close()
