"""A fuzzed corpus of ill-typed request bodies against a real tetherd: every declared field of
the create, update, network create/connect/disconnect, volume create and exec create bodies
gets a value of a kind its Go type refuses (nested structs, slice elements and map values
included), plus non-object roots, deep nesting, huge numbers and floats into integers. Each is
refused with 400 and Go's text naming the field, no reply carries a host path of the daemon or
a Python exception, and nothing is stored: the listings and the target container are unchanged.

The corpus is generated from tether.rules.apitypes's declarations with a seeded random, so it is the
same on every run and grows with the declarations."""
from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest

from harness import Daemon, UnixHTTPConnection
from tether.rules import apitypes
from tether.rules.errors import INTERNAL_ERROR

pytestmark = pytest.mark.integration

SEED = 11
PER_POSITION = 2  # refused values tried at each position of a body
WRONG_VALUES: tuple[Any, ...] = ("s", 7, -3, True, [1], ["x"], {"k": 1}, {"k": "v"}, 1.5)
PYTHON_EXCEPTION = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception)\b|Traceback|\bFile \"")


def wrapped(go_type: apitypes.GoType, value: Any) -> Iterator[tuple[str, Any]]:
    """(position, body part) for `value` at every position below `go_type`: each struct field,
    slice or array element ("[]") and map value ("{}"), and every position below those."""
    if isinstance(go_type, apitypes.Pointer):
        yield from wrapped(go_type.elem, value)
    elif isinstance(go_type, apitypes.Struct):
        for name, field_type in go_type.fields.items():
            yield name, {name: value}
            for path, inner in wrapped(field_type, value):
                yield f"{name}.{path}", {name: inner}
    elif isinstance(go_type, (apitypes.Slice, apitypes.Array)):
        yield "[]", [value]
        for path, inner in wrapped(go_type.elem, value):
            yield f"[].{path}", [inner]
    elif isinstance(go_type, apitypes.Map):
        yield "{}", {"key": value}
        for path, inner in wrapped(go_type.elem, value):
            yield f"{{}}.{path}", {"key": inner}


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over a valid base body, nested objects merged."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def ill_typed(go_type: apitypes.Struct, base: dict[str, Any],
              rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(what, body, expected Go text): PER_POSITION refused values at each position, picked
    by `rng`."""
    corpus = []
    seen = set()
    for path, _ in wrapped(go_type, None):
        if path in seen:
            continue
        seen.add(path)
        candidates = list(WRONG_VALUES)
        rng.shuffle(candidates)
        refused = 0
        for value in candidates:
            body = merged(base, dict(wrapped(go_type, value))[path])
            try:
                apitypes.check(body, go_type)
            except apitypes.GoTypeError as exc:
                corpus.append((f"{path}={value!r}", json.dumps(body).encode(), str(exc)))
                refused += 1
                if refused == PER_POSITION:
                    break
    return corpus


def raw_bodies(go_type: apitypes.Struct, int_field: str) -> list[tuple[str, bytes, str | None]]:
    """Non-object roots, deep nesting, huge numbers and floats into an integer field."""
    value_error = f"json: cannot unmarshal {{}} into Go value of type {go_type.name}"
    field_error = ("json: cannot unmarshal number {} into Go struct field "
                   f"{int_field} of type int64")
    path = int_field.split(".")[1:]  # e.g. HostConfig.Memory below the wrapper

    def at(number: str) -> bytes:
        text = number
        for name in reversed(path):
            text = f'{{"{name}":{text}}}'
        return text.encode()
    bodies: list[tuple[str, bytes, str | None]] = [
        (f"root {kind}", text.encode(), value_error.format(kind))
        for kind, text in (("string", '"x"'), ("number", "12"), ("number", "-1.5e3"),
                           ("array", "[]"), ("array", "[{}]"), ("bool", "true"))]
    bodies += [(f"{int_field}={number}", at(number), field_error.format(number))
               for number in ("1e400", "123456789012345678901234567890", "-1e30", "1.0", "2.5",
                              "1e3", "-0.0")]
    depth = 5000  # beyond any JSON parser's recursion: refused as JSON, not a crash
    bodies.append(("deep nesting", b"[" * depth + b"]" * depth, None))
    bodies.append((f"deep nesting at {int_field}", at('{"a":' * 300 + "1" + "}" * 300),
                   field_error.replace("number {}", "object").format()))
    digits = "9" * 5000
    bodies.append((f"{int_field}=<5000 digits>", at(digits), field_error.format(digits)))
    return bodies


def post(daemon: Daemon, path: str, body: bytes) -> tuple[int, str]:
    conn = UnixHTTPConnection(daemon.sock, 30)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)["message"]
    except (ValueError, KeyError, TypeError):
        return resp.status, data.decode(errors="replace")


def state(daemon: Daemon, cid: str, exec_id: str) -> tuple[Any, ...]:
    """Everything a stored body could change: containers, networks, volumes, the target
    container and its (never started) exec."""
    listing = [daemon.api("GET", path)[1] for path in
               ("/containers/json?all=1", "/networks", "/volumes")]
    inspect = daemon.api("GET", f"/containers/{cid}/json")[1]
    exec_view = daemon.api("GET", f"/exec/{exec_id}/json")[1]
    return (sorted(c["Id"] for c in listing[0]), sorted(n["Id"] for n in listing[1]),
            sorted(v["Name"] for v in listing[2]["Volumes"] or []),
            inspect["Config"], inspect["HostConfig"], inspect["NetworkSettings"]["Networks"],
            exec_view)


def test_ill_typed_bodies_are_refused_and_store_nothing(daemon: Daemon) -> None:
    status, made = daemon.api("POST", "/containers/create?name=bodytypes-target",
                              {"Image": "busybox", "Cmd": ["sleep", "600"]})
    assert status == 201, made
    cid = made["Id"]
    tracebacks = daemon.log_path.read_text(errors="replace").count("Traceback")
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        status, exec_made = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        assert status == 201, exec_made
        before = state(daemon, cid, exec_made["Id"])
        rng = random.Random(SEED)
        targets = [
            ("/containers/create", apitypes.CONTAINER_CREATE,
             {"Image": "busybox", "Cmd": ["true"]}, "HostConfig.HostConfig.Memory"),
            (f"/containers/{cid}/update", apitypes.UPDATE_CONFIG, {}, "UpdateConfig.Memory"),
            ("/networks/create", apitypes.NETWORK_CREATE, {"Name": "bodytypes-net"}, ""),
            ("/networks/bridge/connect", apitypes.NETWORK_CONNECT, {"Container": cid}, ""),
            ("/networks/bridge/disconnect", apitypes.NETWORK_DISCONNECT, {"Container": cid}, ""),
            ("/volumes/create", apitypes.VOLUME_CREATE, {"Name": "bodytypes-vol"}, ""),
            (f"/containers/{cid}/exec", apitypes.EXEC_CONFIG, {"Cmd": ["true"]}, ""),
            (f"/exec/{exec_made['Id']}/start", apitypes.EXEC_START_CHECK, {"Detach": True}, ""),
        ]
        failures = []
        count = 0
        for route, go_type, base, int_field in targets:
            corpus: list[tuple[str, bytes, str | None]] = list(ill_typed(go_type, base, rng))
            corpus += raw_bodies(go_type, int_field) if int_field else [
                (f"root {kind}", text, None)
                for kind, text in (("string", b'"x"'), ("array", b"[1]"))]
            for what, body, expected in corpus:
                count += 1
                status, message = post(daemon, route, body)
                problems = []
                if status != 400:
                    problems.append(f"status {status}")
                if expected is not None and message != expected:
                    problems.append(f"message {message!r} != {expected!r}")
                for secret in (str(daemon.data_root), str(daemon.exec_root), str(daemon.root)):
                    if secret in message:
                        problems.append(f"host path in {message!r}")
                if PYTHON_EXCEPTION.search(message):
                    problems.append(f"Python exception in {message!r}")
                if problems:
                    failures.append(f"{route} {what}: {'; '.join(problems)}")
        assert count > 700  # the declarations give the corpus its size: guard against it collapsing
        assert not failures, f"{len(failures)} of {count} failed:\n" + "\n".join(failures[:40])
        assert state(daemon, cid, exec_made["Id"]) == before
        assert daemon.log_path.read_text(errors="replace").count("Traceback") == tracebacks
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_nulls_are_accepted_as_go_accepts_them(daemon: Daemon) -> None:
    """Go takes null for any field: a create body with every other field null works, and the
    container runs as the image says."""
    body = {name: None for name in apitypes.CONTAINER_CREATE.fields}
    body["Image"] = "busybox"
    body["Cmd"] = ["sh", "-c", "exit 3"]
    status, made = daemon.api("POST", "/containers/create", body)
    assert status == 201, made
    try:
        assert daemon.api("POST", f"/containers/{made['Id']}/start")[0] == 204
        status, waited = daemon.api("POST", f"/containers/{made['Id']}/wait")
        assert (status, waited["StatusCode"]) == (200, 3)
    finally:
        daemon.api("DELETE", f"/containers/{made['Id']}?force=1")


def test_working_dir_on_a_file_names_no_host_path(daemon: Daemon) -> None:
    for cwd in ("/etc/passwd", "/etc/passwd/sub"):
        status, made = daemon.api("POST", "/containers/create",
                                  {"Image": "busybox", "Cmd": ["true"], "WorkingDir": cwd})
        assert status == 201, made
        try:
            status, reply = daemon.api("POST", f"/containers/{made['Id']}/start")
            assert (status, reply["message"]) == (400, f"Cannot mkdir: {cwd} is not a directory")
            state_error = daemon.api("GET", f"/containers/{made['Id']}/json")[1]["State"]["Error"]
            assert str(daemon.data_root) not in state_error
        finally:
            daemon.api("DELETE", f"/containers/{made['Id']}?force=1")


@pytest.mark.parametrize("body", ["null", "{}", '{"Bogus":1}', '{"HostConfig":{"Memory":0}}'])
def test_create_without_a_config_field_is_refused(daemon: Daemon, body: str) -> None:
    """Go leaves the create wrapper's embedded *Config nil unless a field of it is set."""
    assert post(daemon, "/containers/create", body.encode()) == (
        400, "config cannot be empty in order to create a container")


def test_volume_create_takes_null_as_an_empty_body_but_not_an_empty_one(daemon: Daemon) -> None:
    assert post(daemon, "/volumes/create", b"") == (400, "got EOF while reading request body")
    conn = UnixHTTPConnection(daemon.sock, 30)
    try:
        conn.request("POST", "/volumes/create", b"null", {"Content-Type": "application/json"})
        resp = conn.getresponse()
        volume = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 201, volume
    assert daemon.api("DELETE", f"/volumes/{volume['Name']}")[0] == 204


def test_null_at_every_position_is_never_a_server_error(daemon: Daemon) -> None:
    """Go takes null anywhere (a nil pointer, an empty slice or map, a zero value): whatever
    tether then says of such a body, it is never an internal error (a 500 only where dockerd
    answers one, as for an empty Binds entry), and what it creates is removed."""
    status, made = daemon.api("POST", "/containers/create?name=bodytypes-nulls",
                              {"Image": "busybox", "Cmd": ["sleep", "600"]})
    assert status == 201, made
    cid = made["Id"]
    cleanups = {"/containers/create": "/containers/{Id}?force=1",
                "/networks/create": "/networks/{Id}", "/volumes/create": "/volumes/{Name}"}
    tracebacks = daemon.log_path.read_text(errors="replace").count("Traceback")
    try:
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        targets = [
            ("/containers/create", apitypes.CONTAINER_CREATE, {"Image": "busybox", "Cmd": ["true"]}),
            (f"/containers/{cid}/update", apitypes.UPDATE_CONFIG, {}),
            ("/networks/create", apitypes.NETWORK_CREATE, {"Name": "bodytypes-nulls"}),
            ("/networks/bridge/disconnect", apitypes.NETWORK_DISCONNECT, {"Container": "nope"}),
            ("/networks/bridge/connect", apitypes.NETWORK_CONNECT, {"Container": "nope"}),
            ("/volumes/create", apitypes.VOLUME_CREATE, {}),
            (f"/containers/{cid}/exec", apitypes.EXEC_CONFIG, {"Cmd": ["true"]}),
        ]
        failures = []
        for route, go_type, base in targets:
            for path, part in dict(wrapped(go_type, None)).items():
                body = json.dumps(merged(base, part)).encode()
                status, message = post(daemon, route, body)
                if message == INTERNAL_ERROR or PYTHON_EXCEPTION.search(message):
                    failures.append(f"{route} {path}=null: {status} {message}")
                if status == 201 and route in cleanups:  # `message` is the reply's body
                    daemon.api("DELETE", cleanups[route].format(**json.loads(message)))
        assert not failures, "\n".join(failures)
        assert daemon.log_path.read_text(errors="replace").count("Traceback") == tracebacks
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
