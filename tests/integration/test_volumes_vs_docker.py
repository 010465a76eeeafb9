"""Differential tests: `docker volume ...` against a reference Docker 20.10 and against tetherd;
stdout, stderr and exit codes must match once IDs, roots and times are normalised."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import running_daemon
from reference import started

pytestmark = pytest.mark.integration

REF_NAME = "i8a-voldiff"
TETHER = str(Path(sys.executable).parent / "tether")


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, dict[str, str]]]:
    """Both engines, clean: the reference and a tetherd of this module's own. Each is a set of
    environment variables for the docker CLI and the root its volumes live under."""
    with started(REF_NAME) as ref:
        with running_daemon() as d:
            yield {"docker": {"DOCKER_HOST": ref.host, "root": str(ref.data_root / "volumes")},
                   "tether": {"DOCKER_HOST": d.host, "root": str(d.data_root / "volumes")}}


@pytest.fixture(autouse=True)
def clean(engines: dict[str, dict[str, str]]) -> Iterator[None]:
    """Each test starts with no containers and no volumes on either engine."""
    for engine in engines.values():
        env = {**os.environ, "DOCKER_HOST": engine["DOCKER_HOST"]}
        for listing, removal in (("ps -aq", "rm -f"), ("volume ls -q", "volume rm -f")):
            subprocess.run(f"docker {listing} | xargs -r docker {removal}", shell=True, env=env,
                           capture_output=True, timeout=120)
    yield


def normalise(text: str, root: str) -> str:
    text = text.replace(root, "<ROOT>")
    text = re.sub(r"[0-9a-f]{64}", "<ID>", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", "<TIME>", text)


def run(engine: dict[str, str], cmd: str, stdin: str, api: str | None,
        setup: str = "") -> tuple[int, str, str]:
    env = {**os.environ, "DOCKER_HOST": engine["DOCKER_HOST"]}
    if api:
        env["DOCKER_API_VERSION"] = api
    prog = engine.get("cli", "docker")
    proc = subprocess.run(f"{setup}{prog} {cmd}", shell=True, capture_output=True, text=True, input=stdin,
                          env=env, timeout=120)
    # the tether CLI names itself where docker's names docker ("the Docker daemon")
    stderr = re.sub(r"\b(?:[Tt]ether|Docker)\b", "docker", normalise(proc.stderr, engine["root"]))
    return proc.returncode, normalise(proc.stdout, engine["root"]), stderr


def compare(engines: dict[str, dict[str, str]], steps: list[str], stdin: str = "",
            api: str | None = None, sort_lines: bool = False, setup: str = "") -> None:
    """Run each step on both engines and report every difference at once; `setup` is a shell
    prefix run before each (the docker CLI, so that both runs start from the same state)."""
    differences = []
    for cmd in steps:
        ref, ours = (run(engines[name], cmd, stdin, api, setup) for name in ("docker", "tether"))
        if sort_lines:  # dockerd lists pruned volumes in its map's (random) order
            ref, ours = ((c, "\n".join(sorted(o.splitlines())), e) for c, o, e in (ref, ours))
        if ref != ours:
            differences.append(f"$ docker {cmd}\n  docker: {ref!r}\n  tether: {ours!r}")
    assert not differences, "\n".join(differences)


SEED = [
    "volume create v1 --label x=y --label z",
    "volume create --name named",
    "volume create -o type=tmpfs -o device=tmpfs -o o=size=1m,uid=1000 vtmp",
    "volume create -o type=none -o device=/nonexistent-i8a -o o=bind vbind",
    "volume create v9", "volume create v10", "volume create --label app=db data",
    "volume create --label x=1 v11",
]


def test_create_and_its_errors(engines):
    compare(engines, SEED + [
        "volume create v1",
        "volume create a",
        "volume create 'a b'",
        "volume create .hidden",
        "volume create a/b",
        "volume create x" + "x" * 299,
        "volume create --opt foo=bar vx",
        "volume create --opt foo vx",
        "volume create --opt type=tmpfs vx",
        "volume create --opt device=/x vx",
        "volume create --opt o=size=1m vx",
        "volume create -o type=tmpfs -o device=tmpfs -o size=1m vx",
        "volume create -d nope vn",
        "volume create -d nope v1",
        "volume create --name q1 q2",
        "volume create q1 q2",
    ])


def test_inspect_and_ls(engines):
    compare(engines, SEED + [
        "volume inspect v1",
        "volume inspect vtmp vbind",
        "volume inspect v1 nosuch",
        "volume inspect nosuch",
        "volume inspect -f '{{.Name}} {{.Driver}} {{.Labels}} {{.Options}} {{.Scope}}' v1 vtmp",
        "volume inspect -f '{{json .Labels}}' data",
        "volume inspect",
        "volume ls",
        "volume ls -q",
        "volume ls -f name=v1",
        "volume ls -f name=^v -f name=data",
        "volume ls -f label=x -f label=z",
        "volume ls -f label=x=y -f label=app",
        "volume ls -f driver=local -q",
        "volume ls -f driver=loc",
        "volume ls -f dangling=true -q",
        "volume ls -f dangling=xyz",
        "volume ls -f foo=bar",
        "volume ls -f dangling",
        # one label at most where .Labels is printed: dockerd joins its map in random order
        "volume ls --format 'table {{.Name}}\\t{{.Labels}}\\t{{.Driver}}' -f name=^v1. -f name=data",
        "volume ls --format '{{.Name}}|{{.Mountpoint}}|{{.Scope}}|{{.Links}}|{{.Size}}' -f name=v1",
        "volume ls --format json -f label=app",
        "volume ls --format '{{json .}}' -f name=vtmp",
        "volume ls extra",
    ])


def test_in_use_rm_and_prune(engines):
    compare(engines, SEED + [
        "create --name i8a-user -v v1:/data -v data:/d2 busybox",
        "volume ls -f dangling=false",
        "volume rm v1",
        "volume rm -f v1",
        "volume rm data v9 nosuch",
        "volume rm -f nosuch",
        "volume rm",
        "volume prune -f --filter foo=bar",
        "volume prune -f --filter label",
    ])
    # the reference speaks API 1.41, where prune removes named volumes too
    compare(engines, ["volume prune"], stdin="n\n", api="1.41")
    compare(engines, ["volume prune -f --filter label=x", "volume prune -f --filter label!=x",
                      "volume prune -f"], api="1.41", sort_lines=True)
    compare(engines, ["volume ls", "rm i8a-user", "volume rm v1 data", "volume ls"])


def test_tether_cli_matches_docker_cli(engines):
    """The tether CLI and the docker CLI, both against the reference engine."""
    ref = engines["docker"]
    clis = {"docker": ref, "tether": {**ref, "cli": f"{TETHER} -H {ref['DOCKER_HOST']}"}}
    compare(clis, [
        "volume create --label a=b cli1",
        "volume create -o type=tmpfs -o device=tmpfs -o o=size=1m cli2",
        "volume create a",
        "volume create --name q1 q2",
        "volume create -o foo cli3",
        "volume inspect cli1",
        "volume inspect cli1 nosuch",
        "volume inspect -f '{{.Name}} {{.Labels}}' cli1 cli2",
        "volume inspect -f '{{json .}}' cli1 cli2",
        "volume inspect --format json cli1 cli2",
        "volume ls",
        "volume ls -q -f name=cli",
        "volume ls -f label=a",
        "volume ls -f dangling=xyz",
        "volume ls -f dangling",
        "volume ls extra",
        "volume ls --format 'table {{.Name}}\\t{{.Labels}}\\t{{.Scope}}'",
        "volume ls --format json -f name=cli",
        "volume ls --format '{{.Name}}: {{.Mountpoint}}' -f name=cli1",
        "volume rm -f nosuch",
        "volume rm",
        "volume inspect",
        "volume prune -f --filter foo=bar",
        "volume prune -f --filter label",
        "volume prune -a -f",
        "volume prune extra",
    ])
    compare(clis, ["volume prune"], stdin="n\n")
    remake = "docker volume create cli1 >/dev/null; docker volume create cli4 >/dev/null; "
    compare(clis, ["volume rm cli1 nosuch", "volume prune -f --filter label!=zzz"], setup=remake,
            sort_lines=True)
    compare(clis, ["volume ls"])


def sdk_session(host: str, root: str) -> list:
    """One docker SDK walk through the volume API (at the reference's API version); each step's
    result or error, normalised."""
    import docker

    client = docker.DockerClient(base_url=host, version="1.41", timeout=60)
    steps = [
        lambda: client.volumes.create("sdk1", labels={"k": "v"}).attrs,
        lambda: client.volumes.create("sdk2", driver_opts={"type": "tmpfs", "device": "tmpfs",
                                                           "o": "size=1m"}).attrs,
        lambda: client.volumes.create("sdk1", labels={"other": "x"}).attrs,
        lambda: client.volumes.create("s"),
        lambda: client.volumes.create("sdk3", driver="nope"),
        lambda: client.volumes.create("sdk3", driver_opts={"bad": "1"}),
        lambda: client.volumes.get("sdk2").attrs,
        lambda: client.volumes.get("nosuch"),
        lambda: sorted(v.name for v in client.volumes.list()),
        # dockerd lists volumes in Go map order: compare the names sorted
        lambda: sorted(v.name for v in client.volumes.list(filters={"label": "k=v"})),
        lambda: sorted(v.name for v in client.volumes.list(filters={"dangling": True})),
        lambda: client.volumes.list(filters={"bogus": "1"}),
        lambda: client.containers.create("busybox", name="i8a-sdk", volumes=["sdk1:/data"]).name,
        lambda: client.volumes.get("sdk1").remove(),
        lambda: sorted(v.name for v in client.volumes.list(filters={"dangling": False})),
        lambda: client.api.remove_volume("nosuch"),
        lambda: client.api.remove_volume("nosuch", force=True),
        lambda: client.volumes.prune(filters={"label": "k"}),
        lambda: client.containers.get("i8a-sdk").remove(),
        lambda: client.volumes.prune(filters={"label": "k"}),
        lambda: client.volumes.prune(),
        lambda: client.volumes.list(),
    ]
    results = []
    for step in steps:
        try:
            results.append(("ok", step()))
        except docker.errors.APIError as exc:
            results.append(("error", exc.status_code, exc.explanation))
    return [normalise(repr(r), root) for r in results]


def test_sdk_matches_docker(engines):
    ref, ours = (sdk_session(engines[n]["DOCKER_HOST"], engines[n]["root"])
                 for n in ("docker", "tether"))
    assert ours == ref


def mounted_below(root: str) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(root + "/")]


def test_failed_create_leaves_no_anonymous_volume_and_no_mount(engines):
    """A create whose volume cannot be mounted, or whose copy-up fills the volume, fails and
    takes its anonymous volume with it (dockerd's cleanupContainer); a volume at a path the
    image does not have is not mounted at create, so a bad one does not fail that create."""
    seen = {}
    for kind, engine in engines.items():
        steps = ["volume create -o type=tmpfs -o device=tmpfs -o o=bogusopt=1 badopt",
                 "volume create -o type=tmpfs -o device=tmpfs -o o=size=8k tiny",
                 "create -v /anon1 -v badopt:/etc busybox true",
                 "create -v /anon2 -v tiny:/bin busybox true",
                 "create -v badopt:/not/in/image busybox true",
                 "volume ls -q"]
        results = [run(engine, step, "", None) for step in steps]
        seen[kind] = {"codes": [code for code, _, _ in results],
                      "no_space": results[3][2].split(":")[:2],
                      "volumes": results[-1][1].split(),
                      "mounted": mounted_below(engine["root"])}
    assert seen["tether"] == seen["docker"]
    assert seen["tether"] == {
        "codes": [0, 0, 1, 1, 0, 0], "volumes": ["badopt", "tiny"], "mounted": [],
        "no_space": ["Error response from daemon", " failed to copy files"]}
