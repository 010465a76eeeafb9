"""docker build for real: the multi-stage Dockerfile of buildcontext.py through `tether build`,
`DOCKER_BUILDKIT=0 docker build` and the docker SDK against one daemon of this module's own, the
layer cache hit at every step of a second build, and docker commit."""
from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from buildcontext import CACHED_STEPS, STEPS, make_context
from conftest import running_daemon
from harness import Daemon
from localregistry import registries

BUILD_ARGS = ("--build-arg", "BUILD_NO=7")


@pytest.fixture(scope="module")
def d() -> Iterator[Daemon]:
    """A daemon of this module's own: builds leave intermediate images, which go with it."""
    with running_daemon() as daemon:
        yield daemon


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("i6b-ctx"))


def legacy_build(d: Daemon, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "build", *args], input=input, capture_output=True, timeout=300,
                          env={**os.environ, "DOCKER_HOST": d.host, "DOCKER_BUILDKIT": "0"})


def built_id(stdout: str) -> str:
    match = re.search(r"^Successfully built ([0-9a-f]{12})$", stdout, re.M)
    assert match, stdout
    return match.group(1)


def test_tether_build_then_every_step_from_the_cache(d: Daemon, context: Path) -> None:
    cold = d.tether("build", "-t", "i6b/app:1", *BUILD_ARGS, str(context), timeout=300)
    out = cold.stdout.decode()
    assert cold.returncode == 0, cold.stderr.decode() + out
    assert out.startswith("Sending build context to Docker daemon  ")
    assert re.findall(r"^Step (\d+)/(\d+) : ", out, re.M) == [(str(n), str(STEPS)) for n in range(1, STEPS + 1)]
    assert "Using cache" not in out
    assert out.count(" ---> Running in ") == 13  # every step but COPY/ADD, FROM and the meta ARG
    assert out.endswith("Successfully tagged i6b/app:1\n")
    warm = d.tether("build", "-t", "i6b/app:1", *BUILD_ARGS, str(context), timeout=300)
    again = warm.stdout.decode()
    assert warm.returncode == 0, warm.stderr.decode()
    assert again.count(" ---> Using cache\n") == CACHED_STEPS
    assert "Running in" not in again
    assert built_id(again) == built_id(out)
    run = d.tether("run", "--rm", "i6b/app:1")
    assert (run.returncode, run.stdout) == (0, b"hi\n"), run.stderr


def test_docker_cli_legacy_builder_shares_the_cache_and_builds_cold(d: Daemon, context: Path) -> None:
    first = d.tether("build", *BUILD_ARGS, str(context), timeout=300)
    assert first.returncode == 0, first.stderr
    warm = legacy_build(d, "-t", "i6b/app:docker", *BUILD_ARGS, str(context))
    out = warm.stdout.decode()
    assert warm.returncode == 0, warm.stderr.decode()
    assert out.count(" ---> Using cache\n") == CACHED_STEPS
    assert built_id(out) == built_id(first.stdout.decode())
    cold = legacy_build(d, "--no-cache", "-t", "i6b/app:cold", *BUILD_ARGS, str(context))
    assert cold.returncode == 0, cold.stderr.decode()
    assert built_id(cold.stdout.decode()) != built_id(out)
    files = d.docker("run", "--rm", "--entrypoint", "sh", "i6b/app:cold", "-c",
                     "cat /app/build.txt /app/extracted/in.txt /app/added.txt; stat -c '%u:%g %n' "
                     "/app/data /app/data/sub/b.txt /app/out.txt; id -u; echo $PATH")
    assert files.stdout.decode().splitlines() == [
        "build 7", "intar", "hello", "1000:1000 /app/data", "1000:1000 /app/data/sub/b.txt",
        "0:0 /app/out.txt", "1000", "/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_sdk_build(d: Daemon, context: Path) -> None:
    client = d.sdk()
    try:
        image, logs = client.images.build(path=str(context), tag="i6b/app:sdk", buildargs={"BUILD_NO": "7"},
                                          rm=True)
        lines = [entry.get("stream", "") for entry in logs]
        assert any(line.startswith("Successfully built ") for line in lines)
        assert "i6b/app:sdk" in image.tags
        assert image.attrs["Config"]["ExposedPorts"] == {"53/udp": {}, "8080/tcp": {}}
        assert image.attrs["Config"]["Volumes"] == {"/data": {}}
        assert image.attrs["Config"]["Labels"] == {"org.example.title": "demo app", "version": "1"}
        assert client.containers.run("i6b/app:sdk", remove=True) == b"hi\n"
        with pytest.raises(Exception, match="returned a non-zero code: 3"):
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 3\n"))
    finally:
        client.close()


def test_target_stage_and_the_whiteout_of_a_deleted_file(d: Daemon, context: Path) -> None:
    built = d.tether("build", "--target", "build", "-t", "i6b/stage:1", str(context), timeout=300)
    out = built.stdout.decode()
    assert built.returncode == 0, built.stderr.decode()
    assert "Step 6/6 : RUN" in out
    listing = d.tether("run", "--rm", "i6b/stage:1", "ls", "/src")
    assert listing.stdout.decode().split() == ["hello.txt", "out.txt", "sub"]  # a.txt: whiteout


def test_dockerignore_and_a_dockerfile_outside_the_context(d: Daemon, context: Path, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Other.dockerfile"
    dockerfile.write_text("FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"-a\", \"/ctx\"]\n")
    built = d.tether("build", "-f", str(dockerfile), "-t", "i6b/ignore:1", str(context), timeout=300)
    assert built.returncode == 0, built.stderr.decode() + built.stdout.decode()
    listing = d.tether("run", "--rm", "i6b/ignore:1").stdout.decode().split()
    assert "hello.txt" in listing and "Dockerfile" in listing and ".dockerignore" in listing
    assert "secret.txt" not in listing and "ignored.log" not in listing
    assert not any(name.startswith(".dockerfile.") for name in listing)


def test_failing_run_has_dockers_error_code_and_red_stderr(d: Daemon) -> None:
    r = legacy_build(d, "-", input=b"FROM busybox\nRUN echo out; echo err >&2; exit 3\n")
    assert r.returncode == 3
    assert "\x1b[91merr\n\x1b[0m" in r.stdout.decode() and "out\n" in r.stdout.decode()
    assert r.stderr.decode().rstrip().endswith(
        "The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3")
    t = d.tether("build", "-", input=b"FROM busybox\nRUN exit 4\n")
    assert t.returncode == 4
    assert t.stderr.decode() == "The command '/bin/sh -c exit 4' returned a non-zero code: 4\n"
    d.remove_all()  # the failed step's container is kept, as Docker keeps it


def test_quiet_build_args_warning_and_missing_sources(d: Daemon) -> None:
    q = d.tether("build", "-q", "--build-arg", "UNUSED=1", "-", input=b"FROM busybox\nENV A=1\n")
    assert q.returncode == 0, q.stderr
    assert re.fullmatch(rb"sha256:[0-9a-f]{64}\n", q.stdout), q.stdout
    loud = d.tether("build", "--build-arg", "UNUSED=1", "-", input=b"FROM busybox\nENV A=1\n")
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in loud.stdout.decode()
    missing = d.tether("build", "-", input=b"FROM busybox\nCOPY nope /x\n")
    assert missing.returncode == 1
    assert "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: " \
           "file does not exist" in missing.stderr.decode()


def test_commit_makes_a_child_image_with_the_containers_changes(d: Daemon) -> None:
    made = d.docker("run", "--name", "i6b-commit", "busybox", "sh", "-c", "echo x > /f; rm /etc/group")
    assert made.returncode == 0, made.stderr
    try:
        committed = d.docker("commit", "-c", "CMD [\"cat\", \"/f\"]", "i6b-commit", "i6b/committed:1")
        assert committed.returncode == 0, committed.stderr
        assert re.fullmatch(rb"sha256:[0-9a-f]{64}\n", committed.stdout)
        assert d.docker("run", "--rm", "i6b/committed:1").stdout == b"x\n"
        gone = d.docker("run", "--rm", "i6b/committed:1", "ls", "/etc/group")
        assert gone.returncode != 0  # the deletion became a whiteout
        history = d.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "i6b/committed:1")
        assert history.stdout.decode().splitlines()[0] == "sh -c echo x > /f; rm /etc/group"
        parent = d.docker("inspect", "-f", "{{.Parent}}", "i6b/committed:1").stdout.decode().strip()
        assert parent == d.docker("inspect", "-f", "{{.Id}}", "busybox").stdout.decode().strip()
    finally:
        d.docker("rm", "-f", "i6b-commit")


def test_add_from_a_url_is_refused_clearly(d: Daemon) -> None:
    r = d.tether("build", "-", input=b"FROM busybox\nADD http://127.0.0.1:8000/x /x\n")
    assert r.returncode == 1
    assert "tether: ADD from a URL is not supported" in r.stderr.decode()


def test_a_client_that_goes_away_stops_the_running_step(d: Daemon) -> None:
    """The build's RUN container is removed when the client disconnects mid-step."""
    client = subprocess.Popen(["docker", "build", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, "DOCKER_HOST": d.host, "DOCKER_BUILDKIT": "0"})
    try:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(b"FROM busybox\nRUN echo started; sleep 600\n")
        client.stdin.close()
        for line in client.stdout:
            if line == b"started\n":
                break
        running = d.api("GET", "/containers/json")[1]
        assert len(running) == 1, running
    finally:
        client.kill()
        client.wait()
    status, _ = d.api("POST", f"/containers/{running[0]['Id']}/wait?condition=removed", timeout=60)
    assert status in (200, 404)  # removed while the wait was starting, or before
    assert d.api("GET", "/containers/json?all=1")[1] == []


def test_from_scratch_with_copy_from_an_image_and_the_cache(d: Daemon) -> None:
    dockerfile = (b"FROM scratch\nCOPY --from=busybox /bin/busybox /bin/busybox\nENV A=1\n"
                  b'CMD ["/bin/busybox", "sh", "-c", "echo from scratch $A"]\n')
    cold = d.tether("build", "-t", "i6b/scratch:1", "-", input=dockerfile)
    assert cold.returncode == 0, cold.stderr.decode()
    assert "Step 1/4 : FROM scratch\n ---> \n" in cold.stdout.decode()
    assert d.tether("run", "--rm", "i6b/scratch:1").stdout == b"from scratch 1\n"
    layers = d.docker("inspect", "-f", "{{len .RootFS.Layers}}", "i6b/scratch:1").stdout
    assert layers == b"1\n"
    warm = d.tether("build", "-t", "i6b/scratch:1", "-", input=dockerfile)
    assert warm.stdout.decode().count(" ---> Using cache\n") == 3
    assert built_id(warm.stdout.decode()) == built_id(cold.stdout.decode())
    # a stage with no layer at all (scratch, then metadata only) still mounts for WORKDIR and --from
    empty = d.tether("build", "-", input=b"FROM scratch AS meta\nENV A=1\nWORKDIR /w\nFROM busybox\n"
                                        b"COPY --from=meta / /copied/\nRUN ls -d /copied/w\n")
    assert empty.returncode == 0, empty.stderr.decode()
    assert "/copied/w\n" in empty.stdout.decode()


def test_a_missing_from_image_is_pulled_first(d: Daemon) -> None:
    """As dockerd: `FROM` an image that is not here pulls it (anonymously) from its registry."""
    with registries([d.netns]) as (reg,):
        name = f"{reg.address}/i6b/base:1"
        assert d.tether("tag", "busybox", name).returncode == 0
        pushed = d.tether("push", name, timeout=120)
        assert pushed.returncode == 0, pushed.stderr
        assert d.tether("rmi", name).returncode == 0
        built = d.tether("build", "-t", "i6b/pulled:1", "-", input=f"FROM {name}\nRUN echo ok\n".encode(),
                         timeout=120)
        out = built.stdout.decode()
        assert built.returncode == 0, built.stderr.decode() + out
        assert f"Step 1/2 : FROM {name}\n" in out
        assert "1: Pulling from i6b/base\n" in out and f"Status: Downloaded newer image for {name}\n" in out
        assert d.docker("inspect", "-f", "{{.Id}}", name).stdout == \
            d.docker("inspect", "-f", "{{.Id}}", "busybox").stdout
