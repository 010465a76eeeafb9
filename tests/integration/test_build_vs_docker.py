"""The legacy builder side by side: the same context built with `DOCKER_BUILDKIT=0 docker build`
on Docker 20.10 and on tetherd must print the same steps and give an image with the same config,
history and files (IDs, hashes, times and host paths normalised)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from buildcontext import make_context
from conftest import running_daemon
from reference import started

# what differs between any two builds, on any engine
_VOLATILE = ("Id", "Created", "Parent", "Container", "DockerVersion", "GraphDriver", "Metadata")


def normalise(text: str) -> str:
    text = re.sub(r"sha256:[0-9a-f]{64}", "<ID>", text)
    text = re.sub(r"(file|dir|multi):[0-9a-f]{64}", r"\1:<HASH>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)
    return re.sub(r"daemon {2}\S+\r", "daemon  <size>\r", text)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with started("i6b-build") as ref:
        with running_daemon() as tether:
            yield {"docker": ref.host, "tether": tether.host}


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_context(tmp_path_factory.mktemp("i6b-diff-ctx"))


def docker(host: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], input=input, capture_output=True, timeout=300,
                          env={**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"})


def both(engines: dict[str, str], *args: str, input: bytes | None = None) -> dict[str, Any]:
    return {name: docker(host, *args, input=input) for name, host in engines.items()}


def inspect_view(host: str, ref: str) -> str:
    """`docker inspect` of an image with what differs between any two builds taken out."""
    view = json.loads(docker(host, "inspect", ref).stdout)[0]
    view["RootFS"]["Layers"] = len(view["RootFS"]["Layers"])
    view["ContainerConfig"].pop("Hostname")  # a container's short ID, or "", on both
    return normalise(json.dumps({k: v for k, v in view.items() if k not in _VOLATILE}, indent=1,
                                sort_keys=True))


def test_output_config_history_and_files_match_docker(engines: dict[str, str], context: Path) -> None:
    builds = both(engines, "build", "-t", "i6b/diff:1", "--build-arg", "BUILD_NO=7", str(context))
    assert builds["docker"].returncode == builds["tether"].returncode == 0, builds["tether"].stderr
    assert normalise(builds["tether"].stdout.decode()) == normalise(builds["docker"].stdout.decode())

    views = {name: inspect_view(host, "i6b/diff:1") for name, host in engines.items()}
    assert views["tether"] == views["docker"]

    fmt = "{{.CreatedBy}}|{{.Size}}|{{.Comment}}"
    history = both(engines, "history", "--no-trunc", "--format", fmt, "i6b/diff:1")
    assert normalise(history["tether"].stdout.decode()) == normalise(history["docker"].stdout.decode())
    ids = both(engines, "history", "-q", "i6b/diff:1")  # IDs through the parent chain, then <missing>
    shape = {k: [line if line == "<missing>" else "id" for line in r.stdout.decode().split()]
             for k, r in ids.items()}
    assert shape["tether"] == shape["docker"]

    listing = "find /app | sort | xargs stat -c '%n %a %u:%g %s %F'"
    files = both(engines, "run", "--rm", "--entrypoint", "sh", "i6b/diff:1", "-c", listing)
    assert files["tether"].stdout.decode().splitlines() == files["docker"].stdout.decode().splitlines()


def test_second_build_and_failures_match_docker(engines: dict[str, str], context: Path) -> None:
    both(engines, "build", "--build-arg", "BUILD_NO=7", str(context))
    warm = both(engines, "build", "--build-arg", "BUILD_NO=7", str(context))
    assert normalise(warm["tether"].stdout.decode()) == normalise(warm["docker"].stdout.decode())
    assert warm["tether"].stdout.decode().count("Using cache") == 18
    failing = b"FROM busybox\nRUN echo out; echo err >&2; exit 3\n"
    failed = both(engines, "build", "-", input=failing)
    assert failed["tether"].returncode == failed["docker"].returncode == 3
    # stdout and stderr come through two pipes: their relative order is not defined
    outputs = {}
    for name, result in failed.items():
        text = normalise(result.stdout.decode())
        assert "\x1b[91merr\n\x1b[0m" in text and "out\n" in text, text
        outputs[name] = text.replace("\x1b[91merr\n\x1b[0m", "").replace("out\n", "")
    assert outputs["tether"] == outputs["docker"]
    assert failed["tether"].stderr.decode().splitlines()[-1] == failed["docker"].stderr.decode().splitlines()[-1]


def test_images_list_and_rmi_of_a_build_match_docker(engines: dict[str, str], context: Path) -> None:
    """`images` hides a build's intermediate images, `images -a` shows them, and `rmi` of the
    result deletes its untagged parents with it (then `images -a` agrees again)."""
    built = both(engines, "build", "-t", "i6b/rmi:1", "--build-arg", "BUILD_NO=8", str(context))
    assert built["tether"].returncode == built["docker"].returncode == 0
    listed = both(engines, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert sorted(listed["tether"].stdout.decode().split()) == sorted(listed["docker"].stdout.decode().split())
    for args in (("images", "-a", "-q"), ("rmi", "i6b/rmi:1"), ("images", "-a", "-q")):
        results = both(engines, *args)
        texts = {name: normalise(r.stdout.decode()).splitlines() for name, r in results.items()}
        assert (results["tether"].returncode, len(texts["tether"])) == \
            (results["docker"].returncode, len(texts["docker"])), args
        if args[0] == "rmi":
            assert texts["tether"] == texts["docker"]
            # at least the RUN that BUILD_NO=8 changed, the 5 steps after it and the RUN's layer
            assert sum(line.startswith("Deleted: ") for line in texts["tether"]) >= 7


@pytest.mark.parametrize("dockerfile,args", [
    (b"FROM busybox\nFOO bar\n", ()),                    # refused before the stream: a reply
    (b"FROM busybox\nCOPY --bogus=1 a b\n", ()),
    (b"FROM busybox\nCOPY --chmod=755 a b\n", ()),       # refused in the stream
    (b"FROM busybox\nCOPY nope /x\n", ()),
    (b"FROM busybox AS one\nFROM one\n", ("--target", "two")),
    (b"FROM busybox\n", ("--label", "b=2 3", "--label", "a=$X")),
])
def test_errors_and_label_steps_match_docker(engines: dict[str, str], dockerfile: bytes,
                                             args: tuple[str, ...]) -> None:
    results = both(engines, "build", *args, "-", input=dockerfile)
    assert results["tether"].returncode == results["docker"].returncode
    assert normalise(results["tether"].stdout.decode()) == normalise(results["docker"].stdout.decode())
    assert results["tether"].stderr.decode().splitlines()[-1:] == results["docker"].stderr.decode().splitlines()[-1:]


@pytest.mark.parametrize("dockerfile", [
    b"FROM busybox\nENV X=1\n",                    # a step's container: labels {} when none
    b"FROM busybox\nWORKDIR /x\n",
    b"FROM busybox\nRUN true\n",                   # RUN records its config as planned: null
    b"FROM busybox\nWORKDIR /etc\nRUN true\n",      # no change: empty layers, mount targets aside
    b'FROM busybox\nENTRYPOINT ["echo"]\nCMD hi\n',  # ENTRYPOINT drops the base image's CMD
    b"FROM busybox\nMAINTAINER Jane Doe <jane@example.com>\nSTOPSIGNAL SIGINT\n"
    b'SHELL ["/bin/sh", "-ec"]\nRUN echo $0 > /shell\nHEALTHCHECK --interval=1m30s --timeout=5s '
    b"--retries=3 CMD wget -q localhost || exit 1\nENV X=1\nCMD echo hi\n",
])
def test_config_of_each_kind_of_step_matches_docker(engines: dict[str, str], dockerfile: bytes) -> None:
    tag = "i6b/kind:" + hashlib.sha256(dockerfile).hexdigest()[:8]
    for name, result in both(engines, "build", "-t", tag, "-", input=dockerfile).items():
        assert result.returncode == 0, (name, result.stderr)
    views = {name: inspect_view(host, tag) for name, host in engines.items()}
    assert views["tether"] == views["docker"]
    fmt = "{{.CreatedBy}}|{{.Size}}|{{.Comment}}"
    history = both(engines, "history", "--no-trunc", "--format", fmt, tag)
    assert normalise(history["tether"].stdout.decode()) == normalise(history["docker"].stdout.decode())
    for name, result in both(engines, "build", "-t", tag, "-", input=dockerfile).items():
        assert "Using cache" in result.stdout.decode(), name


def test_onbuild_triggers_run_in_the_next_build_as_in_docker(engines: dict[str, str]) -> None:
    base = b"FROM busybox\nONBUILD RUN echo triggered > /t\nONBUILD ENV T=1\n"
    child = b"FROM i6b/onbuild:1\nRUN cat /t\n"
    for _ in range(2):  # the second time, every step and trigger from the cache
        for tag, dockerfile in (("i6b/onbuild:1", base), ("i6b/onbuild:2", child)):
            results = both(engines, "build", "-t", tag, "-", input=dockerfile)
            assert results["tether"].returncode == results["docker"].returncode == 0
            assert normalise(results["tether"].stdout.decode()) == normalise(results["docker"].stdout.decode())
    views = {name: inspect_view(host, "i6b/onbuild:2") for name, host in engines.items()}
    assert views["tether"] == views["docker"]
