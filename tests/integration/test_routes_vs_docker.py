"""Every route of the Engine API 1.44 asked of tetherd and of Docker 20.10: same status code, and
for the routes of features tether does not have (swarm, plugins, checkpoints, BuildKit's session,
build cancel) the same message too, so that a client probing them sees an engine without them.

One request per route (and a few per route where dockerd checks its input in steps), all at
API 1.41, the reference engine's version; every request is harmless: unknown names, empty or
invalid bodies, prune filters that match nothing (the session daemon's other objects stay).

Left out on purpose, each because dockerd would go on to do work tether cannot do or reaches
the internet, where no equal answer exists:
- `POST /swarm/init|join` with a usable listen address (dockerd makes a swarm; tether: 503
  "tether does not support swarm mode"), `GET /plugins/privileges` and `POST /plugins/pull|create`
  with a usable reference (dockerd asks a registry; tether: 501 "tether does not support plugins");
- `GET /containers/{id}/attach/ws` of an existing container (tether: 501, no websocket attach).
`PUT /volumes/{name}` is newer than 1.41: at 1.41 both say 404 (checked here); from 1.42 tether
answers as dockerd 23+ outside a swarm (503, tests/unit/test_absent_routes.py).
"""
from __future__ import annotations

import json

import pytest

from harness import UnixHTTPConnection
from reference import ReferenceEngine, reference_fixture

pytestmark = pytest.mark.integration

NONE = '{"label":{"tether-route-walk-matches-nothing":true}}'

# Known differences outside this routes, left to their own work: `POST /images/load`
# of an empty body (dockerd 200 with the error in the stream, tether 400), `POST /images/{name}/push`
# without X-Registry-Auth nor body (dockerd 400, tether pushes anonymously as docker-py expects),
# `POST /containers/create` without a body (dockerd 20.10: 500 "EOF"; tether 400).

# (method, path, body or None, compare the message too)
ROUTES: list[tuple[str, str, str | None, bool]] = [
    # system
    ("GET", "/_ping", None, False), ("HEAD", "/_ping", None, False),
    ("GET", "/version", None, False), ("GET", "/info", None, False),
    ("GET", "/system/df", None, False), ("OPTIONS", "/containers/json", None, False),
    ("POST", "/auth", "x", True), ("GET", "/nope", None, True),
    # containers
    ("GET", "/containers/json", None, False), ("POST", "/containers/create", "{}", False),
    *[(m, f"/containers/nope{p}", None, True) for m, p in [
        ("GET", "/json"), ("GET", "/top"), ("GET", "/logs?stdout=1"), ("GET", "/changes"),
        ("GET", "/export"), ("GET", "/stats?stream=0"), ("POST", "/resize?h=1&w=1"),
        ("POST", "/start"), ("POST", "/stop"), ("POST", "/restart"), ("POST", "/pause"),
        ("POST", "/unpause"), ("POST", "/wait"), ("POST", "/rename?name=x"), ("DELETE", ""),
        ("HEAD", "/archive?path=/"), ("GET", "/archive?path=/"), ("GET", "/attach/ws")]],
    # dockerd words these two differently ("Cannot kill container: ...", a trailing CRLF)
    ("POST", "/containers/nope/kill", None, False), ("POST", "/containers/nope/attach", None, False),
    ("POST", "/containers/nope/update", "{}", True),
    ("POST", "/containers/nope/exec", '{"Cmd":["true"]}', True),
    ("PUT", "/containers/nope/archive?path=/", "", True), ("POST", "/containers/nope/copy", None, False),
    ("POST", f"/containers/prune?filters={NONE}", None, True),
    ("POST", '/containers/prune?filters={"nope":{"x":true}}', None, True),
    ("POST", '/containers/prune?filters={"until":{"bad":true}}', None, True),
    ("POST", "/containers/prune?filters=bad", None, True),
    # checkpoints (experimental only)
    ("GET", "/containers/nope/checkpoints", None, True),
    ("POST", "/containers/nope/checkpoints", "{}", True),
    ("DELETE", "/containers/nope/checkpoints/c1", None, True),
    # exec
    ("GET", "/exec/nope/json", None, True), ("POST", "/exec/nope/start", "{}", True),
    ("POST", "/exec/nope/resize?h=1&w=1", None, False),
    # images
    ("GET", "/images/json", None, False), ("GET", "/images/nope/json", None, False),
    ("GET", "/images/nope/history", None, True), ("GET", "/images/nope/get", None, False),
    ("GET", "/images/get?names=nope", None, False), ("POST", "/images/nope/tag?repo=x", None, True),
    ("DELETE", "/images/nope", None, True),
("POST", "/images/create?fromImage=UP", None, True),
    ("POST", "/commit?container=nope", None, True),
    ("POST", f"/images/prune?filters={NONE}", None, True),
    ("POST", '/images/prune?filters={"nope":{"x":true}}', None, True),
    ("POST", '/images/prune?filters={"dangling":{"bad":true}}', None, True),
    ("POST", '/images/prune?filters={"until":{"bad":true}}', None, True),
    ("POST", "/images/prune?filters=bad", None, True),
    ("GET", "/distribution/UP/json", None, False),
    # search: no internet here, so both fail reaching Docker Hub (500, in their own words)
    ("GET", "/images/search?term=x", None, False), ("GET", "/images/search?term=x&limit=0", None, True),
    ("GET", "/images/search?term=x&limit=101", None, True),
    ("GET", "/images/search?term=x&limit=abc", None, True),
    ("GET", '/images/search?term=x&filters={"nope":{"1":true}}', None, True),
    ("GET", '/images/search?term=x&filters={"is-official":{"maybe":true}}', None, True),
    ("GET", '/images/search?term=x&filters={"stars":{"a":true}}', None, True),
    # build
    ("POST", "/build/prune?filters=bad", None, True),
    ("POST", '/build/prune?filters={"nope":{"x":true}}', None, True),
    ("POST", '/build/prune?filters={"until":{"bad":true}}', None, True),
    ("POST", '/build/prune?filters={"until":{"999999h":true}}', None, True),
    ("POST", "/build/cancel", None, True), ("POST", "/build/cancel?id=nope", None, True),
    ("POST", "/session", None, True), ("POST", "/grpc", None, True),
    # volumes
    ("GET", "/volumes", None, False), ("GET", "/volumes/nope", None, True),
    ("DELETE", "/volumes/nope", None, True), ("POST", "/volumes/create", None, True),
    ("POST", f"/volumes/prune?filters={NONE}", None, True), ("PUT", "/volumes/nope", "{}", True),
    # networks
    ("GET", "/networks", None, False), ("GET", "/networks/", None, False),
    ("GET", "/networks/nope", None, True), ("DELETE", "/networks/nope", None, True),
    ("POST", "/networks/create", None, True),
    ("POST", "/networks/nope/connect", '{"Container":"nope"}', False),
    ("POST", "/networks/nope/disconnect", '{"Container":"nope"}', False),
    ("POST", f"/networks/prune?filters={NONE}", None, False),
    # events: a bounded window, so that the stream ends
    ("GET", "/events?since=0&until=1", None, False),
    # swarm
    *[("GET", p, None, True) for p in (
        "/swarm", "/swarm/unlockkey", "/nodes", "/nodes/n1", "/services", "/services/s1",
        "/tasks", "/tasks/t1", "/secrets", "/secrets/s1", "/configs", "/configs/c1",
        "/services?filters=bad", "/services/s1/logs", "/services/s1/logs?stdout=1",
        "/tasks/t1/logs", "/tasks/t1/logs?stderr=1")],
    *[("DELETE", p, None, True) for p in ("/nodes/n1", "/services/s1", "/secrets/s1", "/configs/c1")],
    ("POST", "/swarm/init", None, True), ("POST", "/swarm/init", "{}", True),
    ("POST", "/swarm/join", None, True), ("POST", "/swarm/join", "{}", True),
    ("POST", "/swarm/leave", None, True), ("POST", "/swarm/leave?force=1", None, True),
    ("POST", "/swarm/update", None, True), ("POST", "/swarm/update", "{}", True),
    ("POST", "/swarm/update?version=1", "{}", True),
    ("POST", "/swarm/unlock", None, True), ("POST", "/swarm/unlock", "{}", True),
    *[("POST", p, b, True) for p in ("/services/create", "/secrets/create", "/configs/create")
      for b in (None, "{}")],
    *[("POST", f"/{kind}/x1/update{q}", b, True)
      for kind in ("nodes", "services", "secrets", "configs")
      for q, b in (("", None), ("", "{}"), ("?version=1", "{}"))],
    # plugins: none
    ("GET", "/plugins", None, True), ("GET", '/plugins?filters={"nope":{"x":true}}', None, True),
    ("GET", '/plugins?filters={"enabled":{"x":true}}', None, True),
    ("GET", '/plugins?filters={"capability":{"x":true}}', None, True),
    ("GET", "/plugins?filters=bad", None, True),
    ("GET", "/plugins/p1/json", None, True), ("GET", "/plugins/p1:latest/json", None, True),
    ("GET", "/plugins/privileges", None, True), ("GET", "/plugins/privileges?remote=UP", None, True),
    ("DELETE", "/plugins/p1", None, True), ("POST", "/plugins/p1/enable", None, True),
    ("POST", "/plugins/p1/enable?timeout=1", None, True), ("POST", "/plugins/p1/disable", None, True),
    ("POST", "/plugins/p1/push", None, True), ("POST", "/plugins/p1/set", None, True),
    ("POST", "/plugins/p1/set", "[]", True), ("POST", "/plugins/pull", None, True),
    ("POST", "/plugins/pull", "[]", True), ("POST", "/plugins/pull?remote=UP", "[]", True),
    ("POST", "/plugins/p1/upgrade", None, True), ("POST", "/plugins/p1/upgrade", "[]", True),
    ("POST", "/plugins/p1/upgrade?remote=p1", "[]", True), ("POST", "/plugins/create", None, True),
]


def ask(socket_path: str, method: str, path: str, body: str | None) -> tuple[int, str]:
    conn = UnixHTTPConnection(socket_path, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, "/v1.41" + path, body=body.encode() if body is not None else None,
                     headers=headers)
        reply = conn.getresponse()
        data = reply.read()
    finally:
        conn.close()
    message = ""
    if reply.status >= 400 and data:
        try:
            message = json.loads(data).get("message", "")
        except ValueError:
            message = data.decode(errors="replace")
    return reply.status, message


reference = reference_fixture("routes")


def test_every_route_answers_as_dockerd(daemon, reference: ReferenceEngine) -> None:
    ours, theirs = {}, {}
    for method, path, body, with_message in ROUTES:
        key = f"{method} {path} {body or ''}".strip()
        status, message = ask(daemon.sock, method, path, body)
        ours[key] = (status, message) if with_message else status
        status, message = ask(reference.host[len("unix://"):], method, path, body)
        theirs[key] = (status, message) if with_message else status
    differing = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert differing == {}


def _get_json(socket_path: str, path: str) -> tuple[int, object]:
    conn = UnixHTTPConnection(socket_path, timeout=60)
    try:
        conn.request("GET", "/v1.41" + path)
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        conn.close()


def test_distribution_inspect_as_dockerd(daemon, reference: ReferenceEngine) -> None:
    """`GET /distribution/{name}/json` of an image and of an index in a local registry, and of a
    tag it does not have: the same descriptor and platforms (or status) from both engines, each
    reaching the registry (one shared storage) at the same loopback address in its namespace."""
    from localregistry import forget_test_images, registries
    from tether.image.registry import RegistryClient

    with registries([None, daemon.netns, reference.name]) as (reg, _, _):
        try:
            image = f"{reg.address}/i6a/dist:v1"
            assert daemon.docker("tag", "busybox", image).returncode == 0
            assert daemon.docker("push", image).returncode == 0
            client = RegistryClient(reg.address, "i6a/dist", None, [reg.address], push=True)
            data, media_type, digest = client.get_manifest("v1")
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": [
                         {"mediaType": media_type, "digest": digest, "size": len(data),
                          "platform": {"architecture": "amd64", "os": "linux"}},
                         {"mediaType": media_type, "digest": digest, "size": len(data),
                          "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}
            client.put_manifest("multi", json.dumps(index).encode(), index["mediaType"])
            for name, status in (("i6a/dist:v1", 200), ("i6a/dist:multi", 200),
                                 ("i6a/dist:nope", None)):
                path = f"/distribution/{reg.address}/{name}/json"
                ours = _get_json(daemon.sock, path)
                theirs = _get_json(reference.host[len("unix://"):], path)
                if status == 200:
                    assert ours == theirs and theirs[0] == 200, (ours, theirs)
                else:
                    assert ours[0] == theirs[0] != 200, (ours, theirs)
            assert _get_json(daemon.sock, f"/distribution/{reg.address}/i6a/dist:v1/json")[1][
                "Platforms"] == [{"architecture": "amd64", "os": "linux"}]
        finally:
            forget_test_images(daemon)
