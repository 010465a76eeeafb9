"""The HTTP/1.1 server behind tetherd's Docker Engine API: asyncio streams + h11 on a unix socket.

Why not a framework: attach and exec start take over the connection after the request (the
"hijack"), the docker CLI needs headers of long streams (`wait`, `logs -f`, `events`) flushed
before any body byte exists, and error replies must be exactly `{"message": ...}` with
`Content-Type: application/json`. A small server on h11 does all three without fighting anyone.

Handlers are `async def h(req: Request) -> Response | StreamResponse | Hijack`. Whatever a
handler raises becomes an error reply: `ApiError` with its status and message, anything else 500
(logged with its traceback). The connection survives both; only malformed HTTP closes it.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import io
import json
import logging
import os
import re
import socket
import stat
import sys
import tempfile
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote

import h11

import tether
from tether.rules import apitypes, gojson
from tether.rules.errors import INTERNAL_ERROR, ApiError, BadRequest, NotFound, os_error_text

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"

logger = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 256 * 1024  # Go's net/http allows 1 MB; registry auth headers stay far below this
_READ_SIZE = 64 * 1024
_FALSE_WORDS = frozenset({"", "0", "no", "false", "none"})
_VERSION_PREFIX = re.compile(r"/v([0-9]+)\.([0-9]+)(/.*)")
_GO_INT = re.compile(r"[+-]?[0-9]+")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")
_BODYLESS = frozenset({204, 304})
_NO_ROUTES: dict[str, Any] = {}


def api_version(value: str | None) -> tuple[int, int]:
    """A request's API version (`Request.api_version`, from the `/v1.NN` prefix) as a tuple, to
    compare; an unversioned request speaks the newest."""
    major, _, minor = (value or API_VERSION).partition(".")
    return int(major), int(minor or 0)


_MAX_VERSION = api_version(API_VERSION)
_MIN_VERSION = api_version(MIN_API_VERSION)

_STANDARD_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Api-Version", API_VERSION.encode()),
    (b"Ostype", b"linux"),
    (b"Server", f"tether/{getattr(tether, '__version__', '0.1.0')}".encode()),
    (b"Docker-Experimental", b"false"),
)
_STANDARD_HEAD = b"".join(name + b": " + value + b"\r\n" for name, value in _STANDARD_HEADERS)


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Request:
    """One parsed request, body already read in full (into `content`: see `body` and `body_stream`).

    `path` is the raw (still percent-encoded) path without the `/v1.NN` prefix and without the
    query; `params` holds the route's decoded placeholders.
    """

    method: str
    path: str
    api_version: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]
    content: BinaryIO = field(default_factory=io.BytesIO)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        """The whole body in memory: for JSON and other small bodies (archives: `body_stream`)."""
        self.content.seek(0)
        return self.content.read()

    def body_stream(self) -> BinaryIO:
        """The body as a file from its start: what a load, an import, a build context or a
        copy into a container reads, so that a multi-GB archive is never held in memory."""
        self.content.seek(0)
        return self.content

    def q(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, as Go's `r.Form.Get` takes it."""
        values = self.query.get(name)
        return values[0] if values else default

    def qbool(self, name: str, default: bool = False) -> bool:
        """Docker's form boolean: "", 0, no, false, none (any case) are false, all else true."""
        value = self.q(name)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE_WORDS

    def qint(self, name: str, default: int = 0) -> int:
        """An integer parameter; empty counts as missing, as in dockerd's handlers."""
        value = self.q(name)
        if not value:
            return default
        return go_atoi(value)

    def json(self) -> Any:
        """The body decoded as JSON; None for an empty body (body-less POSTs are common)."""
        data = self.body
        if not data.strip():
            return None
        try:
            return gojson.loads(data)
        except gojson.GoSyntaxError as exc:  # Go's scanner text, as dockerd answers
            raise BadRequest(str(exc)) from None

    def json_as(self, go_type: apitypes.GoType, required: bool = False) -> Any:
        """The body decoded and type-checked as dockerd's encoding/json would decode it into
        `go_type` (see tether.rules.apitypes): 400 with Go's text naming the field. None for a JSON
        null, and for an empty body unless `required` (then dockerd's ReadJSON refusal)."""
        if required and not self.body.strip():
            raise BadRequest("got EOF while reading request body")
        try:
            return apitypes.check(self.json(), go_type)
        except apitypes.GoTypeError as exc:
            raise BadRequest(str(exc)) from None

    def filters(self) -> dict[str, list[str]]:
        """The `filters` parameter in either JSON shape, as `{key: [values]}`."""
        return parse_filters(self.q("filters"))

    @property
    def wants_upgrade(self) -> bool:
        """True when the client asked to switch protocols (attach, exec start)."""
        tokens = self.headers.get("connection", "").lower().split(",")
        return "upgrade" in (t.strip() for t in tokens) and "upgrade" in self.headers


def go_atoi(text: str) -> int:
    """Parse like Go's strconv.Atoi, with its error text, so clients see dockerd's message."""
    quoted = json.dumps(text, ensure_ascii=False)
    if not _GO_INT.fullmatch(text):
        raise BadRequest(f"strconv.Atoi: parsing {quoted}: invalid syntax")
    number = int(text)
    if not -(1 << 63) <= number < (1 << 63):
        raise BadRequest(f"strconv.Atoi: parsing {quoted}: value out of range")
    return number


_FILTERS = apitypes.Map(apitypes.Map(apitypes.BOOL))
_LEGACY_FILTERS = apitypes.Map(apitypes.Slice(apitypes.STRING))


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """The CLI's `{"k":{"v":true}}` or docker-py's legacy `{"k":["v"]}`, read as dockerd's
    filters.FromJSON does; otherwise 400 with Go's text for the first shape."""
    if not raw:
        return {}
    try:
        data = gojson.loads(raw, whole=True)
    except gojson.GoSyntaxError as exc:
        raise BadRequest(str(exc)) from None
    try:
        current = apitypes.check(data, _FILTERS) or {}
        return {key: list(values or {}) for key, values in current.items()}
    except apitypes.GoTypeError as exc:
        try:
            legacy = apitypes.check(data, _LEGACY_FILTERS) or {}
        except apitypes.GoTypeError:
            raise BadRequest(str(exc)) from None
        return {key: list(values or []) for key, values in legacy.items()}


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class Response:
    """A complete reply. 204 and 304 never carry a body or a Content-Type."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamResponse:
    """A chunked reply. Headers go out (and are flushed) before the first chunk is asked for.

    Do validation and registration (e.g. of a waiter) in the handler before returning this: a
    generator's body only starts once the headers are on the wire. If the client disconnects,
    the iterator is closed (`aclose`), so its `finally` blocks run.
    """

    chunks: AsyncIterator[bytes]
    content_type: str | None = "application/json"  # None: no Content-Type line (20.10's logs)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class HijackedConn:
    """The raw connection after a hijack: stdin from the client, process output to it.

    The first write waits until the client has read the reply head (see `_until_read`), so
    run() may start, and register what it waits for, at once: dockerd attaches before the
    client reads its head, and a start right after the head must find the attach in place."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 pending: bytes) -> None:
        self._reader = reader
        self._writer = writer
        self._pending = pending
        self._head_read = False

    async def read(self, n: int = _READ_SIZE) -> bytes:
        """Next stdin bytes (those sent along with the request first); b"" at half-close."""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        try:
            return await self._reader.read(n)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        """Send bytes; raises ConnectionError once the client is gone (attach: means detach)."""
        if data:
            if not self._head_read:
                self._head_read = True
                await _until_read(self._writer.get_extra_info("socket"))
            self._writer.write(data)
            await self._writer.drain()

    async def close(self) -> None:
        """Close the connection (the server also does this when `run` returns)."""
        await _close_writer(self._writer)


@dataclass(slots=True)
class Hijack:
    """Take over the connection: the server writes 101 (or 200), drains, then awaits run(conn)."""

    run: Callable[[HijackedConn], Awaitable[None]]
    content_type: str
    # dockerd copies its standard headers (Api-Version, Server...) into exec's hijacked head,
    # never into attach's: attach's head is the status line, Content-Type and the switch alone
    standard_headers: bool = True


Outcome = Response | StreamResponse | Hijack
Handler = Callable[[Request], Awaitable[Outcome]]


def json_response(obj: Any, status: int = 200) -> Response:
    """JSON as dockerd's encoder writes it: no HTML escaping, trailing newline, exact type."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, "application/json")


def no_content(status: int = 204) -> Response:
    """An empty reply (204 for most actions)."""
    return Response(status)


def error_response(status: int, message: str) -> Response:
    """Docker's error body: the CLI prints `message` only with this exact content type."""
    return json_response({"message": message}, status)


# ---------------------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------------------

def _compile_pattern(pattern: str) -> re.Pattern[str]:
    """`/containers/{id}/start` -> regex; `{x:path}` spans segments, the literal rest must match."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    parts: list[str] = []
    pos = 0
    for match in _PARAM.finditer(pattern):
        parts.append(_literal(pattern[pos:match.start()], pattern))
        parts.append(f"(?P<{match[1]}>{'.+' if match[2] else '[^/]+'})")
        pos = match.end()
    parts.append(_literal(pattern[pos:], pattern))
    return re.compile("".join(parts))


def _literal(text: str, pattern: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"bad placeholder in route pattern {pattern!r}")
    return re.escape(text)


class Router:
    """Maps (method, path) to handlers. Literal routes win; patterns are tried in added order.

    A path that matches no route for the method gets 404 `page not found`, also when another
    method would match: that is what dockerd's mux answers.
    """

    def __init__(self, hide: Callable[[str], str] = lambda text: text) -> None:
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: dict[str, list[tuple[re.Pattern[str], Handler]]] = {}
        self.public_message = hide
        """An error text as a client may see it: the daemon passes `Paths.hide`, which hides
        the paths under its data and exec roots that an OSError or a runtime's text can carry."""

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        method = method.upper()
        regex = _compile_pattern(pattern)
        if regex.groups == 0:
            self._exact.setdefault(method, {})[pattern] = handler
        else:
            self._patterns.setdefault(method, []).append((regex, handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and decoded params for a (version-stripped, raw) path; NotFound if none."""
        handler = self._exact.get(method, _NO_ROUTES).get(path)
        if handler is not None:
            return handler, {}
        for regex, candidate in self._patterns.get(method, ()):
            match = regex.fullmatch(path)
            if match is not None:
                return candidate, {k: unquote(v) for k, v in match.groupdict().items()}
        raise NotFound("page not found")


def _check_version(version: str | None) -> None:
    """dockerd's version middleware, with its exact texts."""
    if version is None:
        return
    number = api_version(version)
    if number > _MAX_VERSION:
        raise BadRequest(f"client version {version} is too new. "
                         f"Maximum supported API version is {API_VERSION}")
    if number < _MIN_VERSION:
        raise BadRequest(f"client version {version} is too old. Minimum supported API version is "
                         f"{MIN_API_VERSION}, please upgrade your client to a newer version")


JSON_BODY_LIMIT = 16 << 20
_LINGER_BYTES = 16 << 20  # what a refused request may still send before the close
_LINGER_SECONDS = 5.0
"""Request bodies are read whole before the handler runs; a JSON body has no reason to be large,
so one over this is refused (413) as it arrives instead of being buffered. Other bodies are
archives (import sends text/plain, load/build/cp application/x-tar) and are not limited here."""
SPOOL_IN_MEMORY = 8 << 20
"""A body is kept in memory up to this size and beyond it in an unnamed temporary file (gone
with its last descriptor, even if the daemon is killed): archives can be many GB."""


def _body_limit(event: h11.Request) -> float:
    ctype = next((v for k, v in event.headers if k == b"content-type"), b"")
    return JSON_BODY_LIMIT if ctype.split(b";")[0].strip().lower() == b"application/json" \
        else float("inf")


def _make_request(event: h11.Request, body: BinaryIO) -> Request:
    target = event.target.decode("latin-1")
    path, _, query_string = target.partition("?")
    version = None
    match = _VERSION_PREFIX.fullmatch(path)
    if match is not None:
        version, path = f"{match[1]}.{match[2]}", match[3]
    headers: dict[str, str] = {}
    for raw_name, raw_value in event.headers:  # h11 lower-cases names
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query = parse_qs(query_string, keep_blank_values=True) if query_string else {}
    return Request(event.method.decode("latin-1"), path, version, query, headers, body)


# ---------------------------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _hijack_head(content_type: str, upgrade: bool, standard_headers: bool = True) -> bytes:
    """The reply head dockerd writes before raw stream bytes (101 only if the client asked)."""
    status = b"HTTP/1.1 101 UPGRADED\r\n" if upgrade else b"HTTP/1.1 200 OK\r\n"
    switch = b"Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else b""
    return (status + b"Content-Type: " + content_type.encode("latin-1") + b"\r\n" + switch
            + (_STANDARD_HEAD if standard_headers else b"") + b"\r\n")


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


async def _aclose(chunks: AsyncIterator[bytes]) -> None:
    """Close a handler's iterator so its cleanup runs; its errors are logged, not raised."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        logger.exception("closing a response stream failed")


class _Connection:
    """Serves one client connection: keep-alive loop, then maybe a hijack or a close."""

    def __init__(self, router: Router, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.router = router
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADER_BYTES)

    async def run(self) -> None:
        try:
            while await self._serve_one():
                pass
        except ConnectionError:
            pass  # the client went away; nothing to answer
        except Exception:
            logger.exception("HTTP connection failed")
        finally:
            await _close_writer(self.writer)

    async def _serve_one(self) -> bool:
        """Answer one request; True if the connection may carry another one."""
        try:
            request = await self._read_request()
        except h11.RemoteProtocolError as exc:
            await self._reply_malformed(exc)
            return False
        if request is None:
            return False
        with request.content:  # a spooled body's file goes once the reply has been sent
            outcome = await self._dispatch(request)
            if isinstance(outcome, Hijack):
                await self._hijack(request, outcome)
                return False
            if isinstance(outcome, StreamResponse):
                if not await self._stream(request, outcome):
                    return False
            else:
                await self._respond(request, outcome)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.h11.they_are_waiting_for_100_continue:
                self.writer.write(self.h11.send(h11.InformationalResponse(
                    status_code=100, headers=list(_STANDARD_HEADERS))))
            self.h11.receive_data(await self.reader.read(_READ_SIZE))

    async def _read_request(self) -> Request | None:
        """The next request with its whole body (Content-Length or chunked); None at EOF."""
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return None
        limit = _body_limit(event)
        body: BinaryIO = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # type: ignore[assignment]
        try:
            while True:
                part = await self._next_event()
                if isinstance(part, h11.Data):
                    if body.tell() + len(part.data) > limit:
                        raise h11.RemoteProtocolError(
                            f"request body larger than {limit >> 20} MiB", error_status_hint=413)
                    body.write(part.data)
                elif isinstance(part, h11.EndOfMessage):
                    return _make_request(event, body)
                else:
                    body.close()
                    return None
        except BaseException:
            body.close()
            raise

    async def _dispatch(self, request: Request) -> Outcome:
        try:
            handler, request.params = self.router.resolve(request.method, request.path)
            _check_version(request.api_version)
            return await handler(request)
        except ApiError as exc:
            message = self.router.public_message(exc.message)
            if message != exc.message:
                logger.warning("%s %s: %s", request.method, request.path, exc.message)
            return error_response(exc.status, message)
        except Exception as exc:
            logger.exception("%s %s failed", request.method, request.path)
            if isinstance(exc, OSError):  # a full disk, say: Go's text, never a host path
                return error_response(500, os_error_text(exc))
            return error_response(500, INTERNAL_ERROR)

    async def _respond(self, request: Request, response: Response) -> None:
        headers = list(_STANDARD_HEADERS)
        has_body = response.status not in _BODYLESS
        if has_body:
            if response.content_type:
                headers.append((b"Content-Type", response.content_type.encode("latin-1")))
            headers.append((b"Content-Length", str(len(response.body)).encode()))
        headers += _encode_headers(response.headers)
        data = self.h11.send(h11.Response(status_code=response.status, headers=headers,
                                          reason=_reason(response.status)))
        if has_body and response.body and request.method != "HEAD":
            data += self.h11.send(h11.Data(data=response.body))
        data += self.h11.send(h11.EndOfMessage())
        self.writer.write(data)
        await self.writer.drain()

    async def _reply_malformed(self, exc: h11.RemoteProtocolError) -> None:
        """400 (or h11's hint, e.g. 431, or 413 for a body over its limit) with a JSON
        message; the caller then closes."""
        status = exc.error_status_hint
        text = str(exc) if status == 413 else f"malformed HTTP request: {exc}"
        body = json.dumps({"message": text}).encode() + b"\n"
        headers = [*_STANDARD_HEADERS, (b"Content-Type", b"application/json"),
                   (b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
        try:
            data = self.h11.send(h11.Response(status_code=status, headers=headers,
                                              reason=_reason(status)))
            data += self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return  # a reply was already under way: closing is all that is left
        self.writer.write(data)
        await self.writer.drain()
        await self._linger()

    async def _linger(self) -> None:
        """Half-close, then read and drop what the client still sends (the rest of a refused
        request) until it closes too, within limits: a socket closed with unread data resets
        the connection, and the client then gets ECONNRESET instead of the reply's end (Go's
        server lingers the same way)."""
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write_eof()
        left = _LINGER_BYTES
        try:
            async with asyncio.timeout(_LINGER_SECONDS):
                while left > 0 and (chunk := await self.reader.read(min(left, _READ_SIZE))):
                    left -= len(chunk)
        except (TimeoutError, OSError):
            pass

    async def _stream(self, request: Request, response: StreamResponse) -> bool:
        """Send a chunked reply; False if the connection must close (client gone or failure)."""
        typed = [(b"Content-Type", response.content_type.encode("latin-1"))
                 ] if response.content_type is not None else []
        headers = [*_STANDARD_HEADERS, *typed, (b"Transfer-Encoding", b"chunked"),
                   *_encode_headers(response.headers)]
        try:
            self.writer.write(self.h11.send(h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status))))
            await self.writer.drain()
            if request.method == "HEAD" or await self._pump_until_disconnect(response.chunks):
                self.writer.write(self.h11.send(h11.EndOfMessage()))
                await self.writer.drain()
                return True
            return False
        finally:
            await _aclose(response.chunks)

    async def _pump_until_disconnect(self, chunks: AsyncIterator[bytes]) -> bool:
        """Copy chunks while watching the reader, so an idle stream notices a disconnect.

        True when the iterator is exhausted; False when the client left or the iterator failed
        (the reply then stays unterminated, which tells the client it is incomplete).
        """
        pump = asyncio.create_task(self._pump(chunks))
        watch = asyncio.create_task(self._watch_disconnect())
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            pump.cancel()
            watch.cancel()
            await asyncio.wait((pump, watch))
        if pump.cancelled():
            return False
        error = pump.exception()
        if error is None:
            return True
        if not isinstance(error, ConnectionError):
            logger.error("stream of %r failed", chunks, exc_info=error)
        return False

    async def _pump(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            if chunk:
                self.writer.write(self.h11.send(h11.Data(data=chunk)))
                await self.writer.drain()

    async def _watch_disconnect(self) -> None:
        """Return at EOF or reset; bytes read meanwhile (a pipelined request) are kept for h11."""
        with contextlib.suppress(ConnectionError):
            while data := await self.reader.read(_READ_SIZE):
                self.h11.receive_data(data)

    async def _hijack(self, request: Request, hijack: Hijack) -> None:
        """Write the head alone, then run(), whose first write lets the client read the head
        first: docker-py loses bytes that reach it with the head (attach's replayed logs come
        at once)."""
        self.writer.write(_hijack_head(hijack.content_type, request.wants_upgrade,
                                       hijack.standard_headers))
        await self.writer.drain()
        pending, _ = self.h11.trailing_data
        try:
            await hijack.run(HijackedConn(self.reader, self.writer, pending))
        except ConnectionError:
            pass  # the client left; run() had nothing more to deliver
        except Exception:
            logger.exception("hijacked %s %s failed", request.method, request.path)


async def _until_read(sock: Any, limit: float = 1.0) -> None:
    """Wait (at most `limit` seconds) until the peer of a unix socket has read all that was
    sent: its unread bytes are the send queue (SIOCOUTQ). A client that reads its response
    head through a buffer and the rest from the socket (docker-py's hijack) then gets the rest
    in a read of its own. Other sockets: no wait."""
    if sock is None or sock.family != socket.AF_UNIX:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        try:
            queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return
        if not int.from_bytes(queued, sys.byteorder):
            return
        await asyncio.sleep(0.001)


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------

def _remove_stale_socket(path: str) -> None:
    """Remove a socket left by a dead daemon, but never a live daemon's socket or a plain file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
            return
    raise OSError(f"{path} is in use by a running daemon")


async def _handle_connection(router: Router, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
    # A connection cancelled at shutdown just ends: asyncio 3.11's done-callback would otherwise
    # call task.exception() on it and log the cancellation as an error.
    with contextlib.suppress(asyncio.CancelledError):
        await _Connection(router, reader, writer).run()


def listen_backlog() -> int:
    """As many pending connections as the kernel keeps (dockerd's choice too): with asyncio's
    100, a burst of clients connecting at once gets EAGAIN instead of an answer."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return socket.SOMAXCONN


async def serve(router: Router, socket_path: str, gid: int, mode: int = 0o660) -> asyncio.AbstractServer:
    """Listen on `socket_path`, owned by the daemon and group `gid`, made `mode`; each connection is
    served by its own task. The socket is bound 0600 (Linux's bind takes the mode of the socket's
    inode, whatever the umask), so no other user can connect before its group and mode are set."""
    os.makedirs(os.path.dirname(os.path.abspath(socket_path)), exist_ok=True)
    _remove_stale_socket(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(listener.fileno(), 0o600)
        listener.bind(socket_path)
        os.chown(socket_path, -1, gid)
        os.chmod(socket_path, mode)
        return await asyncio.start_unix_server(functools.partial(_handle_connection, router),
                                               sock=listener, backlog=listen_backlog())
    except BaseException:
        listener.close()
        raise
