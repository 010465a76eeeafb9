"""docker-py 7.1.0's health check tests (tests/integration/api_healthcheck_test.py) in our own
words: the same SDK calls pass against tetherd as against Docker 20.10."""
from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest

from harness import Daemon
from reference import reference_fixture

SECOND = 10**9


ref = reference_fixture("health-sdk")


@pytest.fixture(params=["docker", "tether"])
def api(request: pytest.FixtureRequest, daemon: Daemon) -> Iterator:
    import docker
    host = request.getfixturevalue("ref").host if request.param == "docker" else daemon.host
    client = docker.APIClient(base_url=host, version="auto")
    made: list[str] = []
    client.made = made
    try:
        yield client
    finally:
        for cid in made:
            client.remove_container(cid, force=True)
        client.close()


def _create(api, **healthcheck) -> str:  # type: ignore[no-untyped-def]
    cid = api.create_container("busybox", "top", healthcheck=healthcheck)["Id"]
    api.made.append(cid)
    return cid


def _wait_for(condition: Callable[[], bool], limit: float = 40) -> None:
    """docker-py's helpers.wait_on_condition: poll until true, fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


def _wait_on_health_status(api, cid: str, status: str) -> None:  # type: ignore[no-untyped-def]
    _wait_for(lambda: api.inspect_container(cid)["State"]["Health"]["Status"] == status)


def test_healthcheck_shell_command(api) -> None:  # type: ignore[no-untyped-def]
    cid = _create(api, test='echo "hello world"')
    assert api.inspect_container(cid)["Config"]["Healthcheck"]["Test"] == \
        ["CMD-SHELL", 'echo "hello world"']


def test_healthcheck_passes(api) -> None:  # type: ignore[no-untyped-def]
    cid = _create(api, test="true", interval=SECOND, timeout=SECOND, retries=1)
    api.start(cid)
    _wait_on_health_status(api, cid, "healthy")


def test_healthcheck_fails(api) -> None:  # type: ignore[no-untyped-def]
    cid = _create(api, test="false", interval=SECOND, timeout=SECOND, retries=1)
    api.start(cid)
    _wait_on_health_status(api, cid, "unhealthy")


def test_healthcheck_start_period(api) -> None:  # type: ignore[no-untyped-def]
    # fails twice within the start period (not counted, retries=1 notwithstanding), then passes
    cid = _create(api, test="echo 'x' >> /counter.txt && test `cat /counter.txt | wc -l` -ge 3",
                  interval=SECOND, timeout=SECOND, retries=1, start_period=3 * SECOND)
    since = int(time.time()) - 1
    api.start(cid)
    _wait_on_health_status(api, cid, "healthy")
    log = api.inspect_container(cid)["State"]["Health"]["Log"]
    assert [e["ExitCode"] for e in log][:3] == [1, 1, 0]
    events = api.events(since=since, until=int(time.time()) + 1, decode=True,
                        filters={"container": cid, "event": "health_status"})
    assert [e["Action"] for e in events] == ["health_status: healthy"]  # never unhealthy
