"""Health checks against a real Docker 20.10: the same `docker run --health-*` containers on both
engines give the same State.Health (status, streak, log entries' codes and outputs, the output
cut, the timeout text), `ps` STATUS, `health=` filter, `health_status`/exec events, create-time
refusals, the image's HEALTHCHECK merged with the flags, and the status once paused or stopped.

Waiting is by polling for a state both engines reach (no timing is asserted)."""
from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from typing import Callable

import pytest

from harness import Daemon
from reference import ReferenceEngine, reference_fixture

Docker = Callable[..., subprocess.CompletedProcess]
UP = re.compile(r"Up (Less than a second|\d+ seconds|About a minute)")


ref = reference_fixture("health")


@pytest.fixture(scope="module")
def engines(ref: ReferenceEngine, daemon: Daemon) -> dict[str, Docker]:
    return {"docker": ref.docker, "tether": daemon.docker}


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _health(docker: Docker, name: str) -> dict | None:
    return json.loads(_ok(docker("inspect", "--format", "{{json .State.Health}}", name)))


def _wait(docker: Docker, name: str, test: Callable[[dict], bool], limit: float = 60) -> dict:
    deadline = time.monotonic() + limit
    while True:
        health = _health(docker, name)
        if health and test(health):
            return health
        assert time.monotonic() < deadline, f"{name}: {health}"
        time.sleep(0.2)


PROBES = {  # name -> run flags; each container sleeps, its probe decides
    "ok": ["--health-cmd", "echo hi; exit 0", "--health-interval", "1s"],
    "bad": ["--health-cmd", "echo bad >&2; exit 3", "--health-interval", "1s",
            "--health-retries", "2"],
    "slow": ["--health-cmd", "sleep 5", "--health-interval", "1s", "--health-timeout", "1s",
             "--health-retries", "1"],
    "big": ["--health-cmd", 'head -c 5000 /dev/zero | tr "\\0" a', "--health-interval", "1s"],
    "grace": ["--health-cmd", "exit 1", "--health-interval", "1s", "--health-start-period", "1h"],
}
SETTLED = {"ok": lambda h: h["Status"] == "healthy" and len(h["Log"]) >= 2,
           "bad": lambda h: h["Status"] == "unhealthy",
           "slow": lambda h: h["Status"] == "unhealthy",
           "big": lambda h: h["Status"] == "healthy",
           "grace": lambda h: len(h["Log"]) >= 2}


def _observe(docker: Docker) -> dict:
    tag = uuid.uuid4().hex[:6]
    names = {key: f"hc{key}{tag}" for key in PROBES}
    since = str(int(time.time()) - 1)
    seen: dict = {}
    try:
        _ok(docker("create", "--name", names["ok"] + "c", "--health-cmd", "true", "busybox"))
        seen["created"] = _health(docker, names["ok"] + "c")
        for key, flags in PROBES.items():
            _ok(docker("run", "-d", "--name", names[key], *flags, "busybox", "sleep", "300"))
        for key in PROBES:
            health = _wait(docker, names[key], SETTLED[key])
            last = health["Log"][-1]
            seen[key] = {"Status": health["Status"], "ExitCode": last["ExitCode"],
                         "Output": last["Output"] if key != "big" else len(last["Output"]),
                         "streak": min(health["FailingStreak"], 2),
                         "times": all(e["Start"] <= e["End"] for e in health["Log"]),
                         "log<=5": len(health["Log"]) <= 5}
        ps = _ok(docker("ps", "--filter", f"name={tag}", "--format", "{{.Names}} {{.Status}}"))
        seen["ps"] = sorted(UP.sub("Up X", line.replace(tag, "")) for line in ps.splitlines())
        for value in ("healthy", "unhealthy", "starting", "none"):
            listed = _ok(docker("ps", "-a", "--filter", f"name={tag}", "--filter",
                                f"health={value}", "--format", "{{.Names}}"))
            seen[f"filter {value}"] = sorted(n.replace(tag, "") for n in listed.split())
        bad = docker("ps", "--filter", "health=sick")
        seen["filter error"] = (bad.returncode, bad.stderr.decode())
        _ok(docker("pause", names["ok"]))
        seen["paused"] = (_health(docker, names["ok"])["Status"],
                          UP.sub("Up X", _ok(docker("ps", "--filter", f"name={names['ok']}",
                                                     "--format", "{{.Status}}")).strip()))
        _ok(docker("unpause", names["ok"]))
        _wait(docker, names["ok"], lambda h: h["Status"] == "healthy")
        _ok(docker("stop", "-t", "1", names["ok"]))
        stopped = _health(docker, names["ok"])
        seen["stopped"] = (stopped["Status"], stopped["FailingStreak"], len(stopped["Log"]) > 0)
        events = _ok(docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                            "--filter", f"container={names['ok']}",
                            "--format", "{{.Action}}|{{json .Actor.Attributes}}"))
        seen["events"] = _event_shape(events)
    finally:
        docker("rm", "-f", *names.values(), names["ok"] + "c")
    return seen


def _event_shape(lines: str) -> list[str]:
    """The container's events in order, consecutive probes' events collapsed (their number
    depends on timing): exec attributes by their keys, exit codes kept."""
    shape: list[str] = []
    for line in lines.splitlines():
        action, _, attributes = line.partition("|")
        attrs = json.loads(attributes)
        item = action + " " + ",".join(sorted(k if k != "exitCode" else f"exitCode={v}"
                                              for k, v in attrs.items() if k != "name"))
        if item not in shape[-4:]:
            shape.append(item)
    return shape


def test_health_checks_as_docker(engines: dict[str, Docker]) -> None:
    docker, tether = _observe(engines["docker"]), _observe(engines["tether"])
    assert tether == docker
    assert docker["ok"]["Status"] == "healthy" and docker["slow"]["Output"] == \
        "Health check exceeded timeout (1s)"


@pytest.mark.parametrize("flags", [["--health-interval", "500us"], ["--health-timeout", "1ns"],
                                   ["--health-start-period", "100us"],
                                   ["--health-retries", "-1"], ["--health-interval", "-1s"],
                                   ["--no-healthcheck", "--health-cmd", "true"]])
def test_create_refusals_as_docker(engines: dict[str, Docker], flags: list[str]) -> None:
    results = [engines[e]("create", *flags, "busybox") for e in ("docker", "tether")]
    assert results[0].returncode != 0 and results[1].returncode == results[0].returncode
    texts = [r.stderr.decode().splitlines()[0].replace("docker: ", "") for r in results]
    assert texts[1] == texts[0]


def test_api_refusals_as_docker(ref: ReferenceEngine, daemon: Daemon) -> None:
    import docker as sdk

    for health in ({"Interval": -5}, {"Retries": -1}, {"Timeout": 1}):
        replies = []
        for host in (ref.host, daemon.host):
            client = sdk.APIClient(base_url=host)
            try:
                client.create_container("busybox", healthcheck=health)
            except sdk.errors.APIError as exc:
                replies.append((exc.status_code, exc.explanation))
        assert len(replies) == 2 and replies[0] == replies[1], replies


def test_image_healthcheck_merged_with_flags_as_docker(engines: dict[str, Docker]) -> None:
    dockerfile = b"FROM busybox\nHEALTHCHECK --interval=1s --timeout=7s CMD echo from-image\n"
    shown = []
    for engine in ("docker", "tether"):
        docker = engines[engine]
        tag = f"hcimage{uuid.uuid4().hex[:6]}"
        try:
            _ok(docker("build", "-q", "-t", tag, "-", input=dockerfile))
            _ok(docker("run", "-d", "--name", tag, "--health-retries", "4", tag, "sleep", "300"))
            _ok(docker("run", "-d", "--name", tag + "n", "--no-healthcheck", tag, "sleep", "300"))
            config = json.loads(_ok(docker("inspect", "--format", "{{json .Config.Healthcheck}}", tag)))
            health = _wait(docker, tag, lambda h: h["Status"] == "healthy")
            shown.append((config, health["Log"][-1]["Output"],
                          _ok(docker("inspect", "--format", "{{json .State.Health}}", tag + "n")),
                          _ok(docker("ps", "--filter", "health=none", "--filter", f"name={tag}",
                                     "--format", "{{.Names}}")).replace(tag, "")))
        finally:
            docker("rm", "-f", tag, tag + "n")
            docker("rmi", tag)
    assert shown[1] == shown[0]
    assert shown[0][0]["Retries"] == 4 and shown[0][1] == "from-image\n"
