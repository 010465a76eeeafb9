"""tether and Docker 20.10 through the same registry: each pulls what the other pushed (same image
IDs, same files), and the docker CLI prints the same pull output and errors against both.

The reference engine lives in its own network namespace (named like the engine), so the test
runs one registry process there and one in tetherd's, on one shared storage directory."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from localregistry import LocalRegistry, forget_test_images, free_port, registries
from reference import ReferenceEngine
from tether.image.registry import RegistryClient
from test_registry_pushpull import push_from_test_store, tar_bytes, tar_entry, whiteout_layers

pytestmark = pytest.mark.integration
REFERENCE = ReferenceEngine("i6a-reg")
ENGINE = REFERENCE.name  # also its network namespace, where its registries run


@pytest.fixture(autouse=True)
def _forget_pushed_images(daemon) -> Iterator[None]:
    yield
    forget_test_images(daemon)


@pytest.fixture(scope="module")
def reference() -> Iterator[ReferenceEngine]:
    ref = REFERENCE
    try:
        ref.start()
        yield ref
    finally:
        ref.stop()


def _lines(raw: bytes) -> list[str]:
    return raw.decode().splitlines()


def _by_layer(raw: bytes) -> tuple[list[str], dict[str, list[str]]]:
    """Output lines without a layer ID in order, and each layer's statuses in order, without
    "Verifying Checksum": dockerd's progress channel keeps only a layer's latest message, so
    that one line comes and goes with timing."""
    plain: list[str] = []
    layers: dict[str, list[str]] = {}
    for line in _lines(raw):
        ident, sep, status = line.partition(": ")
        if sep and len(ident) == 12:
            if status != "Verifying Checksum":
                layers.setdefault(ident, []).append(status)
        else:
            plain.append(line)
    return plain, layers


def test_each_engine_pulls_what_the_other_pushed(daemon, reference: ReferenceEngine, tmp_path: Path) -> None:
    with registries([None, daemon.netns, ENGINE]) as (reg, _, _):
        from_tether = f"{reg.address}/i6a/from-tether:v1"
        assert daemon.docker("tag", "busybox", from_tether).returncode == 0
        assert daemon.docker("push", from_tether).returncode == 0
        pulled = reference.docker("pull", from_tether)
        assert pulled.returncode == 0, pulled.stderr
        tether_side = daemon.sdk().images.get(from_tether).attrs
        repo_digest = next(d for d in tether_side["RepoDigests"] if d.startswith(from_tether.rsplit(":", 1)[0]))
        docker_side = reference.docker("inspect", "--format", "{{.Id}} {{json .RepoDigests}}", from_tether)
        assert docker_side.stdout.decode().strip() == f'{tether_side["Id"]} ["{repo_digest}"]'

        whiteouts = f"{reg.address}/i6a/whiteouts:v1"
        image_id = push_from_test_store(tmp_path / "store", whiteouts)
        assert reference.docker("pull", whiteouts).returncode == 0
        shown = reference.docker("run", "--rm", whiteouts, "sh", "-c", "cat /data/keep; ls /opq /data")
        assert reference.docker("inspect", "--format", "{{.Id}}", whiteouts).stdout.decode().strip() == image_id
        assert daemon.docker("pull", whiteouts).returncode == 0
        ours = daemon.docker("run", "--rm", whiteouts, "sh", "-c", "cat /data/keep; ls /opq /data")
        assert (ours.returncode, ours.stdout) == (shown.returncode, shown.stdout)
        assert _lines(shown.stdout)[0] == "two"

        from_docker = f"{reg.address}/i6a/from-docker:v1"
        assert reference.docker("tag", "busybox", from_docker).returncode == 0
        assert reference.docker("push", from_docker).returncode == 0
        ref_id = reference.docker("inspect", "--format", "{{.Id}}", from_docker).stdout.decode().strip()
        pulled = daemon.docker("pull", from_docker)
        assert pulled.returncode == 0, pulled.stderr
        assert daemon.sdk().images.get(from_docker).id == ref_id
        ran = daemon.docker("run", "--rm", from_docker, "echo", "pulled from docker's push")
        assert ran.stdout == b"pulled from docker's push\n"

        for name in (from_tether, whiteouts, from_docker):
            daemon.docker("rmi", name)
            reference.docker("rmi", name)


def test_a_layer_pulled_goes_back_as_the_same_blob(daemon, reference: ReferenceEngine) -> None:
    """A layer Docker compressed, pulled by tether and pushed back to the repository: tether finds
    Docker's blob there (one HEAD) instead of uploading its own compression of the layer."""
    with registries([None, daemon.netns, ENGINE]) as (reg, _, _):
        name = f"{reg.address}/i6a/docker-made:v1"
        layer = tar_bytes([tar_entry("docker-made", data=os.urandom(4096))])
        assert reference.docker("import", "-", name, input=layer).returncode == 0
        assert reference.docker("push", name).returncode == 0
        assert daemon.docker("pull", name).returncode == 0
        again = name.replace(":v1", ":again")
        assert daemon.docker("tag", name, again).returncode == 0
        pushed = daemon.docker("push", again)
        assert pushed.returncode == 0, pushed.stderr
        statuses = [line.split(": ", 1)[1] for line in _lines(pushed.stdout)[1:-1]]
        assert statuses == ["Preparing", "Layer already exists"]
        client = RegistryClient(reg.address, "i6a/docker-made")
        layers = [json.loads(client.get_manifest(tag)[0])["layers"] for tag in ("v1", "again")]
        assert layers[0] == layers[1]
        reference.docker("rmi", name)


def test_pull_output_and_errors_match_docker(daemon, reference: ReferenceEngine, tmp_path: Path) -> None:
    """An image whose layers neither engine has seen: the same lines (Docker downloads layers in
    parallel, so each layer's lines are compared in order, not their interleaving)."""
    with registries([None, daemon.netns, ENGINE]) as (reg, _, _):
        name = f"{reg.address}/i6a/same-output:v1"
        push_from_test_store(tmp_path / "store", name, whiteout_layers()[1:])
        expected = reference.docker("pull", name)
        got = daemon.docker("pull", name)
        assert got.returncode == expected.returncode == 0
        assert _by_layer(got.stdout)[0] == _by_layer(expected.stdout)[0]
        assert _by_layer(got.stdout)[1] == _by_layer(expected.stdout)[1], expected.stdout.decode()
        again = (reference.docker("pull", name), daemon.docker("pull", name))
        assert _lines(again[0].stdout) == _lines(again[1].stdout)

        for missing in (f"{reg.address}/i6a/same-output:nope", f"{reg.address}/i6a/nothing-here:v1",
                        f"{reg.address}/i6a/same-output@sha256:{'0' * 64}"):
            want, have = reference.docker("pull", missing), daemon.docker("pull", missing)
            assert (have.returncode, have.stderr) == (want.returncode, want.stderr), missing

        unknown = f"{reg.address}/i6a/never-tagged:v1"
        want, have = reference.docker("push", unknown), daemon.docker("push", unknown)
        assert (have.returncode, have.stderr) == (want.returncode, want.stderr)
        for engine in (reference, daemon):
            engine.docker("rmi", name)


def test_basic_auth_messages_match_docker(daemon, reference: ReferenceEngine, tmp_path: Path,
                                          monkeypatch) -> None:
    """Each engine's CLI gets a config dir of its own (the CLI warns only when it writes new
    credentials), named the same in both outputs."""
    def run(engine, *args: str) -> tuple[int, str]:
        config = tmp_path / ("docker" if engine is reference else "tether")
        monkeypatch.setenv("DOCKER_CONFIG", str(config))
        result = engine.docker(*args)
        return result.returncode, result.stderr.decode().replace(str(config), "<config>")

    with registries([daemon.netns, ENGINE], users={"alice": "s3cret"}) as (reg, _):
        name = f"{reg.address}/i6a/private:v1"
        for engine in (reference, daemon):
            assert engine.docker("tag", "busybox", name).returncode == 0
        steps = [["push", name], ["pull", name], ["login", "-u", "alice", "-p", "nope", reg.address],
                 ["login", "-u", "alice", "-p", "s3cret", reg.address]]
        for args in steps:
            assert run(daemon, *args) == run(reference, *args), args
        for engine in (reference, daemon):
            assert run(engine, "push", name)[0] == 0
            engine.docker("rmi", name)


def test_plain_http_registry_off_loopback_is_refused_alike(daemon, reference: ReferenceEngine) -> None:
    ip = "10.99.0.1"
    netns = [daemon.netns, ENGINE]
    for ns in netns:
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
    storage = Path(tempfile.mkdtemp(prefix="i6a-registry-data-", dir="/var/tmp"))
    port = free_port()
    regs = [LocalRegistry(storage, ns, port, ip=ip) for ns in netns]
    try:
        for reg in regs:
            reg.start()
        name = f"{ip}:{port}/i6a/plain:v1"
        want, have = reference.docker("pull", name), daemon.docker("pull", name)
        assert (have.returncode, have.stderr) == (want.returncode, want.stderr)
    finally:
        for reg in regs:
            reg.stop()
        shutil.rmtree(storage, ignore_errors=True)
        for ns in netns:
            subprocess.run(["ip", "-n", ns, "addr", "del", f"{ip}/32", "dev", "lo"], check=False)
