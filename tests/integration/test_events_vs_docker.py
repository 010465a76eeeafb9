"""The container events of commit, export and docker cp, against a real Docker 20.10: the same
commands on both engines give the same `docker events` (type, action and attributes), each
verb its own event (`commit` naming the new image, `export`, `archive-path`,
`extract-to-dir`)."""
from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
import uuid
from typing import Callable

from reference import reference_fixture

IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


ref = reference_fixture("i12-events")


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr.decode()
    return result


def _container_events(run: Callable, repo: str) -> list[tuple[str, str, dict[str, str]]]:
    """Run the verbs on a fresh container; its container events, each commit's imageID checked
    to be the image it made and then replaced by a placeholder (IDs hold creation times)."""
    name = f"i12ev{uuid.uuid4().hex[:8]}"
    since = str(int(time.time()))
    made: list[str] = []
    try:
        _ok(run("create", "--name", name, "-l", "svc=yes", "busybox", "sh", "-c",
                "echo hi > /f"))
        _ok(run("start", "-a", name))
        _ok(run("commit", "-m", "a message", "-a", "someone", name, f"{repo}:v1"))
        _ok(run("commit", name, f"docker.io/library/{repo}"))
        made.append(_ok(run("commit", name)).stdout.decode().strip())
        _ok(run("export", name))
        _ok(run("cp", f"{name}:/f", "-"))
        _ok(run("cp", "-", f"{name}:/", input=_tar_of("g", b"in\n")))
        _ok(run("rm", name))
        until = str(int(time.time()) + 1)
        r = _ok(run("events", "--since", since, "--until", until, "--filter",
                    f"container={name}", "--filter", "type=container", "--format",
                    "{{.Type}} {{.Action}} {{json .Actor.Attributes}}"))
        made[:0] = [run("image", "inspect", "--format", "{{.Id}}", image).stdout.decode().strip()
                    for image in (f"{repo}:v1", f"{repo}:latest")]
    finally:
        run("rm", "-f", name)
        run("rmi", f"{repo}:v1", f"{repo}:latest", *made[-1:])
    events = []
    for line in r.stdout.decode().splitlines():
        type_, action, attributes = line.split(" ", 2)
        events.append((type_, action, json.loads(attributes)))
    committed = [attrs for _, action, attrs in events if action == "commit"]
    assert [attrs["imageID"] for attrs in committed] == made
    for attrs in committed:
        assert IMAGE_ID.fullmatch(attrs["imageID"])
        attrs["imageID"] = "<id>"
        assert attrs["name"] == name
        attrs["name"] = "<name>"
    for _, _, attrs in events:
        attrs["name"] = "<name>"
    return events


def test_commit_export_and_cp_events_match_docker(daemon, ref) -> None:
    repo = f"i12ev{uuid.uuid4().hex[:6]}"
    docker = _container_events(ref.docker, repo)
    tether = _container_events(daemon.docker, repo)
    assert tether == docker
    assert [action for _, action, _ in tether] == [
        "create", "attach", "start", "die", "commit", "commit", "commit", "export",
        "archive-path", "extract-to-dir", "destroy"]
    commits = [attrs for _, action, attrs in tether if action == "commit"]
    # the CLI sends `latest` as the tag of a reference without one: imageRef is what was sent
    assert [(a["comment"], a["imageRef"]) for a in commits] == [
        ("a message", f"{repo}:v1"), ("", f"{repo}:latest"), ("", "")]
    assert all(a["svc"] == "yes" and a["image"] == "busybox" for a in commits)


def _commit_actions(run: Callable) -> list[str]:
    """A running container committed three ways: as the CLI does by default (frozen for the
    commit), with `--pause=false`, and while already paused; its container events' actions."""
    name = f"i12cp{uuid.uuid4().hex[:8]}"
    since = str(int(time.time()))
    made: list[str] = []
    try:
        _ok(run("run", "-d", "--name", name, "busybox", "sleep", "60"))
        made.append(_ok(run("commit", name)).stdout.decode().strip())
        made.append(_ok(run("commit", "--pause=false", name)).stdout.decode().strip())
        _ok(run("pause", name))
        made.append(_ok(run("commit", name)).stdout.decode().strip())
        _ok(run("unpause", name))
        _ok(run("rm", "-f", name))
        until = str(int(time.time()) + 1)
        r = _ok(run("events", "--since", since, "--until", until, "--filter",
                    f"container={name}", "--filter", "type=container", "--format",
                    "{{.Action}}"))
    finally:
        run("rm", "-f", name)
        run("rmi", *made)
    return r.stdout.decode().split()


def test_commit_freezes_a_running_container_as_docker(daemon, ref) -> None:
    docker = _commit_actions(ref.docker)
    assert _commit_actions(daemon.docker) == docker
    assert docker == ["create", "start", "pause", "commit", "unpause", "commit", "pause",
                      "commit", "unpause", "kill", "die", "destroy"]
