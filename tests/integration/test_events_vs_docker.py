"""The events of commit, export, docker cp and the image verbs, against a real Docker 20.10: the
same commands on both engines give the same `docker events` (type, action and attributes), each
verb its own event (`commit` naming the new image, `export`, `archive-path`, `extract-to-dir`;
`tag`, `save`, `load`, `import`, `push`, `pull`, `untag`)."""
from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Callable

from localregistry import forget_test_images, registries
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


def _image_events(run: Callable, netns_registry: str, tmp: Path) -> list[str]:
    """Every image verb once (tag, save, rmi, load, import with and without a tag, commit
    with a tag, build, push, pull); the image events in order, image IDs numbered by first
    appearance (commits and builds hold creation times, so IDs differ between engines)."""
    repo = f"i12im{uuid.uuid4().hex[:6]}"
    pushed = f"{netns_registry}/i6a/{repo}:v1"  # i6a: forgotten by forget_test_images
    archive = tmp / f"{repo}.tar"
    since = f"{time.time():.6f}"  # not the engine's own setup in the same second
    made = [f"{repo}:one", f"{repo}-plain", f"{repo}-imp:x", f"{repo}-imp2", f"{repo}-cm:v",
            f"{repo}-cm2", f"{repo}-bt:1", pushed]
    try:
        _ok(run("tag", "busybox", f"{repo}:one"))
        _ok(run("tag", "busybox", f"docker.io/library/{repo}:two"))
        _ok(run("tag", "busybox", f"{repo}-plain"))
        _ok(run("save", f"{repo}:one"))
        _ok(run("save", "-o", str(archive), f"{repo}:one", "busybox"))
        _ok(run("rmi", f"{repo}:one", f"{repo}:two"))
        _ok(run("load", "-i", str(archive)))
        _ok(run("import", "-", f"{repo}-imp:x", input=_tar_of("f", b"imported\n")))
        made.append(_ok(run("import", "-", input=_tar_of("g", b"plain\n"))).stdout.decode().strip())
        _ok(run("import", "-", f"{repo}-imp2", input=_tar_of("h", b"untagged\n")))
        _ok(run("create", "--name", repo, "busybox", "true"))
        _ok(run("commit", repo, f"{repo}-cm:v"))
        _ok(run("commit", repo, f"{repo}-cm2"))
        _ok(run("rm", repo))
        _ok(run("build", "-q", "-t", f"{repo}-bt:1", "-",
                input=b"FROM busybox\nLABEL i12=labelled\nRUN true\n"))
        _ok(run("tag", "busybox", pushed))
        _ok(run("push", pushed))
        _ok(run("rmi", pushed))
        _ok(run("pull", pushed))
        until = str(int(time.time()) + 1)
        r = _ok(run("events", "--since", since, "--until", until, "--filter", "type=image",
                    "--format", "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}"))
    finally:
        run("rm", "-f", repo)
        for image in made:
            run("rmi", image)
    numbered: dict[str, str] = {}

    def number(match: re.Match) -> str:
        return numbered.setdefault(match.group(0), f"<id{len(numbered) + 1}>")
    return [IMAGE_ID.sub(number, line).replace(repo, "<repo>")
            for line in r.stdout.decode().splitlines()]


def test_image_verbs_emit_image_events_as_docker(daemon, ref, tmp_path: Path) -> None:
    with registries([daemon.netns, ref.name]) as (registry, _):
        docker = _image_events(ref.docker, registry.address, tmp_path)
        try:
            tether = _image_events(daemon.docker, registry.address, tmp_path)
        finally:  # the push gave busybox a repo digest in the shared daemon
            forget_test_images(daemon)
    assert tether == docker
    actions = [line.split(" ", 1)[0] for line in tether]
    assert actions == ["tag", "tag", "tag", "save", "save", "untag", "untag", "load", "tag",
                       "import", "import", "tag", "import", "tag", "tag", "tag", "tag", "push",
                       "untag", "pull"]
    # a reference sent without a tag is named as sent (the CLI adds `latest` for tag and
    # commit, not for import)
    assert any('"name":"<repo>-imp2"}' in line for line in tether)
    assert any('"i12":"labelled"' in line for line in tether)  # the image's labels
