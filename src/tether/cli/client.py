"""A small HTTP/1.1 client for the Engine API over a unix socket.

The CLI runs on every user's hot path, so this avoids `http.client` (which pulls in `email` and
`ssl`, tens of milliseconds of imports) and speaks just the HTTP the daemon uses: fixed-length,
chunked and read-until-close bodies, plus the `Upgrade: tcp` hijack for attach and exec.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode

DEFAULT_HOST = "unix:///run/tether/tether.sock"
MAX_API_VERSION = (1, 44)
_CHUNK = 65536


class CliError(Exception):
    """An error the CLI prints as-is (already worded like docker's) before exiting with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class DaemonError(CliError):
    """A non-2xx reply; `str()` is docker's `Error response from daemon: <message>`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Error response from daemon: {message}")
        self.status = status
        self.daemon_message = message


class ConnectError(CliError):
    """The socket is missing or refuses connections (the daemon is not running)."""


def resolve_host(flag: str | None, environ: dict[str, str] | None = None) -> str:
    """Pick the endpoint as documented: -H, then TETHER_HOST, then DOCKER_HOST, then the default."""
    env = os.environ if environ is None else environ
    return flag or env.get("TETHER_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST


def socket_path(host: str) -> str:
    """The filesystem path of a `unix://` endpoint; other schemes are refused with a clear error."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if path:
            return path
    scheme = host.split("://", 1)[0] if "://" in host else host
    raise CliError(f"unsupported host {host!r}: only unix:// sockets are supported (got {scheme})")


def parse_version(text: str) -> tuple[int, int]:
    """"1.41" -> (1, 41); anything unparsable counts as the oldest version docker assumes."""
    try:
        major, minor = text.split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return (1, 24)


@dataclass
class Response:
    """A reply whose body is read on demand from the connection it arrived on."""

    status: int
    reason: str
    headers: dict[str, str]
    reader: "_Reader"
    _body: bytes | None = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive (follow-mode logs, pulls, wait bodies)."""
        length = self.headers.get("content-length")
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            yield from self.reader.chunked()
        elif length is not None:
            yield from self.reader.fixed(int(length))
        elif self.status in (204, 304) or self.status < 200:
            return
        else:
            yield from self.reader.until_close()

    def read(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self.chunks())
        return self._body

    def json(self) -> Any:
        return json.loads(self.read() or b"null")


class _Reader:
    """Buffered reads from a socket, exposing whatever is buffered for hijacked streams."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(_CHUNK)
        self.buf += data
        return bool(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("connection closed by the daemon")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("connection closed by the daemon")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def fixed(self, n: int) -> Iterator[bytes]:
        while n > 0:
            if not self.buf and not self._fill():
                return
            data, self.buf = self.buf[:n], self.buf[n:]
            n -= len(data)
            yield data

    def chunked(self) -> Iterator[bytes]:
        while True:
            size = int(self.line().split(b";", 1)[0], 16)
            if size == 0:
                while self.line():
                    pass
                return
            yield self.exactly(size)
            self.line()

    def until_close(self) -> Iterator[bytes]:
        if self.buf:
            data, self.buf = self.buf, b""
            yield data
        while self._fill():
            data, self.buf = self.buf, b""
            yield data

    def head(self) -> tuple[int, str, dict[str, str]]:
        status_line = self.line().decode("latin-1")
        parts = status_line.split(" ", 2)
        headers: dict[str, str] = {}
        while line := self.line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


@dataclass
class Hijacked:
    """A connection switched to a raw stream: `sock` plus bytes that arrived with the headers."""

    sock: socket.socket
    initial: bytes
    content_type: str


class Client:
    """Engine API client. The API version is negotiated lazily, like docker's HEAD /_ping.

    `start`, when given, is called with the socket path if no daemon answers there (the CLI's
    autostart, `tether.cli.daemon_start`), and the ping is tried once more."""

    def __init__(self, host: str, start: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.path = socket_path(host)
        self.start = start
        self._version: str | None = None
        self._conn: tuple[socket.socket, _Reader] | None = None

    # -- connections -----------------------------------------------------------------------
    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise ConnectError(
                f"Cannot connect to the tether daemon at {self.host}. Is the tether daemon running?"
            ) from exc
        return sock

    def _shared(self) -> tuple[socket.socket, _Reader]:
        if self._conn is None:
            sock = self._open()
            self._conn = (sock, _Reader(sock))
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn[0].close()
            self._conn = None

    # -- version ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """min(1.44, daemon's Api-Version), or 1.24 without the header, as docker CLI 28 does."""
        if self._version is None:
            try:
                resp = self._exchange(self._shared(), "HEAD", "/_ping", {}, b"")
            except ConnectError:
                if self.start is None:
                    raise
                self.start(self.path)
                resp = self._exchange(self._shared(), "HEAD", "/_ping", {}, b"")
            offered = parse_version(resp.headers.get("api-version", "1.24"))
            chosen = min(offered, MAX_API_VERSION)
            self._version = f"{chosen[0]}.{chosen[1]}"
        return self._version

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        """Versioned path with docker's query encoding (lists repeat the key, None is dropped)."""
        target = f"/v{self.version}{path}"
        if query:
            items = [(k, v) for k, v in query.items() if v is not None]
            if items:
                target += "?" + urlencode(items, doseq=True, quote_via=quote)
        return target

    # -- requests --------------------------------------------------------------------------
    @staticmethod
    def _encode(
        method: str, target: str, headers: dict[str, str], body: bytes, upgrade: bool = False
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", "Host: api.moby.localhost", "User-Agent: tether-cli"]
        if upgrade:
            lines += ["Connection: Upgrade", "Upgrade: tcp"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if "Transfer-Encoding" not in headers and (body or method in ("POST", "PUT")):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _exchange(
        self, conn: tuple[socket.socket, _Reader], method: str, target: str,
        headers: dict[str, str], body: bytes,
    ) -> Response:
        sock, reader = conn
        sock.sendall(self._encode(method, target, headers, body))
        status, reason, resp_headers = reader.head()
        if method == "HEAD":
            resp_headers = {**resp_headers, "content-length": "0"}
        resp = Response(status, reason, resp_headers, reader)
        if conn is self._conn:
            resp.read()
            if resp_headers.get("connection", "").lower() == "close":
                self.close()
        return resp

    @staticmethod
    def _body(body: Any, headers: dict[str, str]) -> bytes:
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(body).encode()

    def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
        headers: dict[str, str] | None = None, own_connection: bool = False,
    ) -> Response:
        """Send one request; raise DaemonError for >= 400. Body streaming is up to the caller.

        `own_connection` gives a dedicated socket, needed when the reply stays open (wait, logs
        -f) while other requests go out on the shared one.
        """
        hdrs = dict(headers or {})
        payload = self._body(body, hdrs)
        target = self.url(path, query)
        if own_connection:
            sock = self._open()
            conn = (sock, _Reader(sock))
        else:
            conn = self._shared()
        resp = self._exchange(conn, method, target, hdrs, payload)
        if resp.status >= 400:
            raise error_from(resp)
        return resp

    def json(self, method: str, path: str, query: dict[str, Any] | None = None,
             body: Any = None) -> Any:
        return self.request(method, path, query, body).json()

    def upload(self, path: str, query: dict[str, Any], stream: Any, content_type: str,
               method: str = "POST") -> Response:
        """Send a body of unknown length (a tar from stdin) with chunked transfer encoding."""
        sock = self._open()
        reader = _Reader(sock)
        head = self._encode(method, self.url(path, query),
                            {"Content-Type": content_type, "Transfer-Encoding": "chunked"}, b"")
        sock.sendall(head)
        while block := stream.read(_CHUNK):
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
        sock.sendall(b"0\r\n\r\n")
        status, reason, headers = reader.head()
        resp = Response(status, reason, headers, reader)
        if status >= 400:
            raise error_from(resp)
        return resp

    def hijack(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Hijacked:
        """POST with `Upgrade: tcp` and return the raw stream (attach, exec start)."""
        hdrs: dict[str, str] = {}
        payload = self._body(body, hdrs)
        if not payload:
            hdrs["Content-Type"] = "text/plain"
        sock = self._open()
        reader = _Reader(sock)
        sock.sendall(self._encode("POST", self.url(path, query), hdrs, payload, upgrade=True))
        status, reason, headers = reader.head()
        if status >= 400:
            raise error_from(Response(status, reason, headers, reader))
        if status not in (101, 200):
            sock.close()
            raise CliError(f"unable to upgrade to tcp, received {status}")
        return Hijacked(sock, reader.buf, headers.get("content-type", ""))


def error_from(resp: Response) -> DaemonError:
    """Word an error reply as docker's client does (JSON `message`, else the raw body)."""
    raw = resp.read()
    if resp.content_type == "application/json":
        try:
            message = json.loads(raw).get("message")
        except (ValueError, AttributeError):
            message = None
        if message is None:
            message = f"API returned a {resp.status} ({resp.reason}) but provided no error-message"
        return DaemonError(resp.status, message)
    text = raw.decode(errors="replace").strip()
    if not text:
        text = (f"{resp.status} {resp.reason}: check if the server supports the requested API"
                " version")
    return DaemonError(resp.status, text)
