"""Differential test: representative ill-typed, malformed or invalid request bodies sent to
Docker 20.10 and to tetherd; the message must be the same and so must the status, with one
deliberate difference: 20.10 answers a container create or update body that Go cannot decode
(a type or a syntax error) with 500, tether with 400 (the client's mistake; 20.10 itself answers
400 for the same errors on networks, volumes and exec). Struct names that changed after 20.10
are normalised."""
from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from harness import Daemon
from reference import ReferenceEngine

pytestmark = pytest.mark.integration

CREATE = "/containers/create"
BAD_BODIES: list[tuple[str, str]] = [
    (CREATE, '"x"'),
    (CREATE, '[]'),
    (CREATE, '{"Image":"busybox","Env":"A=1"}'),
    (CREATE, '{"Image":"busybox","Cmd":5}'),
    (CREATE, '{"Image":"busybox","Tty":"yes"}'),
    (CREATE, '{"Image":"busybox","HostConfig":"x"}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"Memory":"lots"}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"Memory":1.5}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"CpuShares":1e3}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"BlkioWeight":70000}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"ConsoleSize":[-1,2]}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"PortBindings":["x"]}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":1}]}}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":"1"}]}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"Mounts":[{"TmpfsOptions":{"Mode":"x"}}]}}'),
    (CREATE, '{"Image":"busybox","Healthcheck":{"Interval":"5s"}}'),
    (CREATE, '{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"a":'
             '{"IPAMConfig":{"IPv4Address":1}}}}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"99999"}]}}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"PortBindings":{"x":[{"HostPort":"80"}]}}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"PortBindings":{"80-81/tcp":[]}}}'),
    (CREATE, '{"Image":"busybox","WorkingDir":"rel"}'),
    (CREATE, '{"Image":"busybox","Env":["=x"]}'),
    (CREATE, '{"Image":"busybox","StopSignal":"FOO"}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"ExtraHosts":["bad"]}}'),
    (CREATE, '{"Image":"busybox","HostConfig":{"ExtraHosts":["h:notanip"]}}'),
    ("/containers/{cid}/update", '"x"'),
    ("/containers/{cid}/update", '{"Memory":"x"}'),
    ("/containers/{cid}/update", '{"RestartPolicy":{"Name":1}}'),
    ("/networks/create", '"x"'),
    ("/networks/create", '{"Name":5}'),
    ("/networks/create", '{"Name":"n","IPAM":{"Config":[{"Subnet":5}]}}'),
    ("/networks/bridge/connect", '{"Container":5}'),
    ("/networks/bridge/connect", '{"Container":"x","EndpointConfig":{"Aliases":"x"}}'),
    ("/networks/bridge/disconnect", '{"Container":"x","Force":"x"}'),
    ("/volumes/create", '"x"'),
    ("/volumes/create", '{"Name":5}'),
    ("/volumes/create", '{"Labels":{"a":5}}'),
    ("/containers/{cid}/exec", '"x"'),
    ("/containers/{cid}/exec", '{"Cmd":"x"}'),
    ("/containers/{cid}/exec", '{"Cmd":["x"],"Privileged":1}'),
    # empty bodies where dockerd reads the body with httputils.ReadJSON
    ("/networks/create", ""),
    ("/networks/bridge/connect", ""),
    ("/networks/bridge/disconnect", ""),
    ("/volumes/create", ""),
    ("/containers/{cid}/exec", ""),
    ("/containers/{cid}/exec", "null"),
    ("/networks/bridge/connect", "{}"),
    ("/networks/bridge/connect", "null"),
    # malformed JSON: Go's scanner texts
    (CREATE, '{x'),
    (CREATE, '{"Image":"busybox",}'),
    (CREATE, '{"Image":"busybox"'),
    (CREATE, '{"Image":"busybox","HostConfig":{"Memory":NaN}}'),
    ("/containers/{cid}/update", '{"Memory":1e}'),
    ("/networks/create", '{"Name":tru}'),
    ("/networks/create", '{"Name":"a\\u12x"}'),
    ("/networks/create", '{"Name":"a\x01"}'),
    ("/volumes/create", '{"Name":"a",}'),
    ("/volumes/create", "{'Name':1}"),
    ("/containers/{cid}/exec", '[1 2]'),
    ("/networks/bridge/connect", '{"Container" 1}'),
]
GO_DECODING = ("json: cannot unmarshal", "invalid character", "unexpected EOF")
# Go struct names dockerd 20.10 uses where API 1.44's types are named differently
RENAMED = {"volume.VolumeCreateBody": "volume.CreateOptions",
           "VolumeCreateBody.": "CreateOptions."}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def post(sock: str, path: str, body: str) -> tuple[int, dict]:
    conn = _UnixConnection(sock)
    try:
        conn.request("POST", f"/v1.41{path}", body.encode(), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, {"raw": data.decode(errors="replace")}


@pytest.fixture(scope="module")
def engines(daemon: Daemon) -> Iterator[dict[str, tuple[str, str]]]:
    """name -> (socket, ID of a created container to update and exec in)."""
    ref = ReferenceEngine("i11-bodytypes")
    made: dict[str, tuple[str, str]] = {}
    try:
        ref.start()
        for name, sock in (("docker", ref.host.removeprefix("unix://")), ("tether", daemon.sock)):
            status, reply = post(sock, CREATE, '{"Image":"busybox","Cmd":["sleep","60"]}')
            assert status == 201, reply
            made[name] = (sock, reply["Id"])
        yield made
    finally:
        if "tether" in made:
            daemon.api("DELETE", f"/containers/{made['tether'][1]}?force=1")
        ref.stop()


def outcome(engine: tuple[str, str], route: str, body: str) -> tuple[int, str]:
    sock, cid = engine
    status, reply = post(sock, route.format(cid=cid), body)
    message = str(reply.get("message", reply)).replace(cid, "<ID>")
    for old, new in RENAMED.items():
        message = message.replace(old, new)
    if status == 500 and message.startswith(GO_DECODING) and \
            route in (CREATE, "/containers/{cid}/update"):
        status = 400  # see the module's docstring
    return status, message


def test_bad_bodies_answer_as_docker(engines: dict[str, tuple[str, str]]) -> None:
    differences = []
    for route, body in BAD_BODIES:
        ref, ours = (outcome(engines[name], route, body) for name in ("docker", "tether"))
        assert ref[0] >= 400, (route, body, ref)  # the corpus is of refused bodies only
        if ref != ours:
            differences.append(f"POST {route} {body}\n  docker: {ref}\n  tether: {ours}")
    assert not differences, "\n".join(differences)


def get(sock: str, path: str) -> dict:
    conn = _UnixConnection(sock)
    try:
        conn.request("GET", f"/v1.41{path}")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_odd_but_valid_body_is_read_as_docker_reads_it(engines: dict[str, tuple[str, str]]) -> None:
    """Keys in any case, unknown fields, a string Cmd, nulls inside maps and slices, a
    ConsoleSize of three: both engines store the same thing."""
    body = ('{"image":"busybox","cmd":"true","labels":{"a":null},"Bogus":1,"hostconfig":'
            '{"consolesize":[1,2,3],"portbindings":{"80/tcp":[null]},"BOGUS":{"x":1}},'
            '"ENV":["A=1",null]}')
    body_ok = body.replace(',null]}', ']}')  # dockerd refuses the null Env entry ("" is no name)
    views = {}
    for name, (sock, _) in engines.items():
        assert outcome(engines[name], CREATE, body) == (
            400, "invalid environment variable: ")
        status, made = post(sock, CREATE, body_ok)
        assert status == 201, made
        view = get(sock, f"/containers/{made['Id']}/json")
        views[name] = (view["Config"]["Cmd"], view["Config"]["Labels"], view["Config"]["Env"],
                       view["HostConfig"]["ConsoleSize"], view["HostConfig"]["PortBindings"])
        conn = _UnixConnection(sock)
        conn.request("DELETE", f"/v1.41/containers/{made['Id']}?force=1")
        conn.getresponse().read()
        conn.close()
    assert views["tether"] == views["docker"]
