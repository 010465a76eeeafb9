"""api/absent.py: the answers of a dockerd without swarm, plugins, checkpoints or BuildKit, in
dockerd's order of checks (the differential walk, tests/integration/test_routes_vs_docker.py,
compares them with Docker 20.10; this covers what 20.10 cannot answer: API 1.42+ and the
refusals where dockerd would go on to do the work)."""
from __future__ import annotations

import asyncio
import io

import pytest

from tether.api.absent import AbsentRoutes
from tether.api.http import Request, Router
from tether.rules.errors import ApiError, NotFound


class _NoContainers:
    def get(self, ref: str):
        raise NotFound(f"No such container: {ref}")


def _answer(method: str, path: str, body: bytes = b"", version: str | None = "1.44",
            query: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    router = Router()
    AbsentRoutes(_NoContainers()).register(router)  # type: ignore[arg-type]
    handler, params = router.resolve(method, path)
    req = Request(method, path, version, query or {}, headers or {}, io.BytesIO(body), params)
    try:
        reply = asyncio.run(handler(req))
    except ApiError as exc:
        return exc.status, exc.message
    return reply.status, reply.body.decode()


def test_cluster_volume_update_by_api_version():
    assert _answer("PUT", "/volumes/v1", b"{}", "1.41") == (404, "page not found")
    assert _answer("PUT", "/volumes/v1", b"{}", "1.44") == (
        503, "volume update only valid for cluster volumes, but swarm is not enabled")


def test_swarm_init_with_an_address_names_the_missing_feature():
    assert _answer("POST", "/swarm/init", b'{"ListenAddr":"0.0.0.0:2377"}') == (
        503, "tether does not support swarm mode")
    assert _answer("POST", "/swarm/join", b"{}") == (
        400, 'invalid ListenAddr "": invalid empty address')


@pytest.mark.parametrize("path, query", [
    ("/plugins/pull", {"remote": ["vieux/sshfs"]}),
    ("/plugins/create", {"name": ["p1"]}),
])
def test_plugin_installs_are_refused(path, query):
    assert _answer("POST", path, b"[]", query=query) == (501, "tether does not support plugins")


def test_session_upgrade_is_refused_by_protocol():
    headers = {"connection": "Upgrade", "upgrade": "h2c"}
    assert _answer("POST", "/session", headers=headers) == (400, "protocol h2c not supported")
    assert _answer("POST", "/grpc") == (500, "no upgrade proto in request")


def test_websocket_attach():
    assert _answer("GET", "/containers/c1/attach/ws") == (404, "No such container: c1")


def test_update_version_texts():
    assert _answer("POST", "/secrets/s1/update", b"{}") == (400, "invalid secret version")
    assert _answer("POST", "/nodes/n1/update", b"{}", query={"version": ["x"]}) == (
        400, "invalid node version 'x': strconv.ParseUint: parsing \"x\": invalid syntax")


def test_search_term_and_filters():
    from tether.image import search

    assert search.split_term("busybox") == ("index.docker.io", "busybox")
    assert search.split_term("library/busybox") == ("index.docker.io", "library/busybox")
    assert search.split_term("localhost:5000/x/y") == ("localhost:5000", "x/y")
    assert search.split_term("docker.io/x") == ("index.docker.io", "x")
    keep = search.result_filter({"is-official": ["true"], "stars": ["3", "10"]})
    assert keep({"is_official": True, "star_count": 10})
    assert not keep({"is_official": True, "star_count": 9})
    assert not keep({"is_official": False, "star_count": 99})
