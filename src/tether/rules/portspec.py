"""Port specs: the docker CLI's `-p`/`--expose` grammar and dockerd's view of PortBindings.

Pure (stdlib only), because both sides need it: the CLI builds the create body exactly as the
docker CLI 28 does (docker/cli opts.go over go-connections v0.5 `nat`), and the daemon validates
PortBindings and turns them into allocation requests as dockerd does. Error texts and the order in
which they are checked were taken from the real docker CLI 28.2 and Docker 20.10 on this machine
(tests/unit/test_portspec.py holds the recorded table), because scripts match on them.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

PROTOCOLS = ("tcp", "udp", "sctp")
# libnetwork's types.ParseProtocol numbers; dockerd sorts and reports protocols by them
_PROTOCOL_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132}
_MAX_PORT = 65535

Binding = dict[str, str]


class PortSpecError(ValueError):
    """A port spec Docker rejects; `str(exc)` is Docker's exact message."""


# ---- Go building blocks ------------------------------------------------------------------------
def go_quote(text: str) -> str:
    """Go's strconv.Quote, as strconv errors print the offending input. Lone surrogates are the
    undecodable argv bytes Python smuggles in (surrogateescape): Go prints those as \\xNN."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in text:
        code = ord(ch)
        if ch in named:
            out.append(named[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def parse_uint16(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 16), with its error texts. Go scans left to right and
    stops at the first problem, so "65536x" is out of range while "6x" is a syntax error."""
    value = 0
    for ch in text:
        if not "0" <= ch <= "9":
            break
        value = value * 10 + ord(ch) - 48
        if value > _MAX_PORT:
            raise PortSpecError(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    else:
        if text:
            return value
    raise PortSpecError(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")


def parse_port_range(text: str) -> tuple[int, int]:
    """go-connections nat.ParsePortRange: "N" or "N-M" (M >= N); like Go, anything after a
    second "-" is ignored ("1-2-3" is 1-2)."""
    if not text:
        raise PortSpecError("empty string specified for ports")
    if "-" not in text:
        port = parse_uint16(text)
        return port, port
    parts = text.split("-")
    start, end = parse_uint16(parts[0]), parse_uint16(parts[1])
    if end < start:
        raise PortSpecError(f"invalid range specified for port: {text}")
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort: "80/udp" -> ("udp", "80"); the protocol defaults to tcp; ("", "")
    when there is no port before the slash."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def go_parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """net.ParseIP: dotted IPv4 without leading zeros or IPv6 (embedded IPv4 allowed), no zone."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _strip_brackets(ip: str) -> str:
    """net.SplitHostPort(ip + ":") for a bracketed IP, with Go's errors (go-connections wraps
    them as `invalid IP address <ip>: address <ip>:: <why>`)."""
    hostport = ip + ":"
    end = hostport.find("]")
    why = ""
    if end < 0:
        why = "missing ']' in address"
    elif end + 1 != len(hostport) - 1:
        why = "too many colons in address" if hostport[end + 1] == ":" else "missing port in address"
    elif "[" in hostport[1:]:
        why = "unexpected '[' in address"
    if why:
        raise PortSpecError(f"invalid IP address {ip}: address {hostport}: {why}")
    return hostport[1:end]


# ---- the CLI's -p / --expose ---------------------------------------------------------------------
def _standard_notation(spec: str) -> str:
    """The CLI's long form `published=H,target=C,protocol=P` as the short `H:C/P`."""
    if "=" not in spec:
        return spec
    params = {"protocol": "tcp"}
    for pair in spec.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PortSpecError(
                f"invalid publish opts format (should be name=value but got '{pair}')")
        params[key] = value
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def _split_parts(raw: str) -> tuple[str, str, str]:
    """`c`, `h:c`, `ip:h:c`; with more colons the last two are h and c, the rest is the IP."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _checked_range(text: str, what: str) -> tuple[int, int]:
    try:
        return parse_port_range(text)
    except PortSpecError:
        raise PortSpecError(f"invalid {what}: {text}") from None


def parse_publish(spec: str) -> list[tuple[str, Binding]]:
    """One `-p` value -> [("5000/tcp", {"HostIp": ..., "HostPort": ...}), ...] as docker CLI 28
    sends them. Checks in go-connections v0.5's order: IP, port present, container port, host
    port, range lengths, protocol."""
    raw = _standard_notation(spec)
    ip, host, container = _split_parts(raw)
    proto, container = split_proto_port(container)
    if ip.startswith("["):
        ip = _strip_brackets(ip)
    if ip and go_parse_ip(ip) is None:
        raise PortSpecError(f"invalid IP address: {ip}")
    if not container:
        raise PortSpecError(f"no port specified: {raw}<empty>")
    start, end = _checked_range(container, "containerPort")
    host_start, host_end = _checked_range(host, "hostPort") if host else (0, 0)
    if host and end - start != host_end - host_start and end != start:
        raise PortSpecError(
            f"invalid ranges specified for container and host Ports: {container} and {host}")
    if proto.lower() not in PROTOCOLS:
        raise PortSpecError(f"invalid proto: {proto}")
    mappings = []
    for offset in range(end - start + 1):
        host_port = str(host_start + offset) if host else ""
        if start == end and host_start != host_end:
            host_port += f"-{host_end}"
        mappings.append((f"{start + offset}/{proto.lower()}", {"HostIp": ip, "HostPort": host_port}))
    return mappings


def publish_body(specs: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, list[Binding]]]:
    """Several -p values -> (ExposedPorts, PortBindings) merged as nat.ParsePortSpecs does (a
    container port published twice gets both bindings, in order). Keys sorted, as Go's JSON
    encoder writes maps."""
    bindings: dict[str, list[Binding]] = {}
    for spec in specs:
        for key, binding in parse_publish(spec):
            bindings.setdefault(key, []).append(binding)
    ordered = dict(sorted(bindings.items()))
    return {key: {} for key in ordered}, ordered


def parse_expose(spec: str) -> list[str]:
    """One `--expose` value -> port keys. The CLI neither lowercases nor checks the protocol
    here (`80/FOO` reaches the daemon as is)."""
    if ":" in spec:
        raise PortSpecError(f"invalid port format for --expose: {spec}")
    proto, port = split_proto_port(spec)
    try:
        start, end = parse_port_range(port)
    except PortSpecError as exc:
        raise PortSpecError(f"invalid range format for --expose: {spec}, error: {exc}") from None
    return [f"{number}/{proto}" for number in range(start, end + 1)]


# ---- the daemon's side ---------------------------------------------------------------------------
def port_key(key: str) -> tuple[int, str]:
    """"5000/tcp" -> (5000, "tcp"); no protocol means tcp, as nat.Port.Proto() says."""
    proto, number = split_proto_port(key)
    return parse_uint16(number), (proto or "tcp").lower()


def binding_fields(binding: Any) -> tuple[str, str]:
    """(HostIp, HostPort) of one PortBindings entry; missing or null fields are ""."""
    if not isinstance(binding, dict):
        raise PortSpecError(f"invalid port binding: {binding!r}")
    host_ip, host_port = binding.get("HostIp") or "", binding.get("HostPort") or ""
    if not isinstance(host_ip, str) or not isinstance(host_port, str):
        raise PortSpecError(f"invalid port binding: {binding!r}")
    return host_ip, host_port


def _host_range(host_port: str) -> tuple[int, int]:
    """dockerd reads a HostPort through nat.NewPort(nat.SplitProtoPort(...)): "8000/udp" is
    8000, "" (and "0") ephemeral."""
    _, port = split_proto_port(host_port)
    return parse_port_range(port) if port else (0, 0)


def _valid_container_port(number: str) -> bool:
    try:
        return parse_uint16(number) != 0
    except PortSpecError:
        return False


def validate_bindings(port_bindings: dict[str, Any] | None) -> dict[str, Any]:
    """dockerd's create-time check of HostConfig.PortBindings (daemon/container.go), returning
    the bindings as requested (inspect shows them unchanged). Docker 20.10 lets container port 0
    (and an empty one) through and then publishes a port that forwards nowhere; tether refuses
    it with the same text it gives any other bad container port."""
    bindings = dict(port_bindings or {})
    for key, entries in bindings.items():
        _, number = split_proto_port(key)
        if not _valid_container_port(number):
            raise PortSpecError(f"invalid port specification: {go_quote(number)}")
        for binding in entries or []:
            _, host_port = binding_fields(binding)
            try:
                _host_range(host_port)
            except PortSpecError:
                raise PortSpecError(
                    f"invalid port specification: {go_quote(host_port)}") from None
    return bindings


@dataclass(frozen=True)
class BindingRequest:
    """One host binding to allocate: host_ip "" is the daemon's default (0.0.0.0 and ::);
    (host_start, host_end) (0, 0) is an ephemeral port, equal a fixed port, else a range."""

    proto: str
    container_port: int
    host_ip: str
    host_start: int
    host_end: int

    def precedes(self, other: BindingRequest) -> bool:
        """go-connections' portMapSorter.Less, as Docker 20.10 sorts a container's bindings
        before allocating them: a higher host port (a range by its start, ephemeral as 0) or a
        higher container port first. Not a strict order: what comes out is what Go's insertion
        sort makes of it (see `docker_order`)."""
        return self.host_start > other.host_start or self.container_port > other.container_port


def docker_order(requests: list[BindingRequest]) -> list[BindingRequest]:
    """Docker 20.10's allocation order: Go's sort.Sort, which for up to 12 items (every
    container anyone publishes by hand) is an insertion sort over `precedes`."""
    items = list(requests)
    for i in range(1, len(items)):
        j = i
        while j > 0 and items[j].precedes(items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1
    return items


def _canonical_ip(text: str) -> str:
    """The host IP as dockerd uses it: unparsable means the default (Docker 20.10 publishes
    `HostIp: "bogus"` on 0.0.0.0 and ::), IPv4-mapped IPv6 is IPv4 (Go's net.IP)."""
    ip = go_parse_ip(text)
    if ip is None:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _request_proto(proto: str) -> str:
    """libnetwork refuses a protocol it does not know when it programs the binding."""
    if proto not in PROTOCOLS:
        raise PortSpecError(f"invalid transport protocol: {_PROTOCOL_NUMBERS.get(proto, 0)}")
    return proto


def binding_requests(exposed: dict[str, Any] | None, bindings: dict[str, Any] | None,
                     publish_all: bool) -> list[BindingRequest]:
    """The bindings dockerd programs at start, in its allocation order. As in Docker, only
    exposed ports are published (the docker CLI exposes every -p port; a PortBindings entry for
    a port that is not exposed is ignored), and -P gives each exposed port without an explicit
    binding one ephemeral binding on the default IP."""
    requests = []
    for key in exposed or {}:
        entries = (bindings or {}).get(key) or []
        if not entries and publish_all:
            entries = [{}]
        if not entries:
            continue
        number, proto = port_key(key)
        for binding in entries:
            host_ip, host_port = binding_fields(binding)
            start, end = _host_range(host_port)
            requests.append(BindingRequest(_request_proto(proto), number, _canonical_ip(host_ip),
                                           start, end))
    return docker_order(requests)
