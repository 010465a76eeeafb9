"""Differential tests: the same commands through the docker CLI and through tether, both against
a reference Docker engine; stdout, stderr and exit codes must match once IDs are normalised."""
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from reference import ReferenceEngine

pytestmark = pytest.mark.integration

REF = ReferenceEngine("clidiff")
SOCK = REF.host
TETHER = str(Path(sys.executable).parent / "tether")


def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    ref = REF
    try:
        ref.start()
        sh(f"DOCKER_HOST={SOCK} docker run --name ex busybox sh -c 'echo hi; echo err >&2; exit 3'")
        sh(f"DOCKER_HOST={SOCK} docker run -d --name web -p 8080:80 --expose 90 busybox sleep 300")
        yield
    finally:
        ref.stop()


def normalise(text: str) -> str:
    text = text.replace("tether", "docker")
    text = re.sub(r"[0-9a-f]{64}", "<ID>", text)
    text = re.sub(r"[0-9a-f]{12}", "<SHORT>", text)
    # times move between the two runs; column widths follow them, so squeeze padding too
    text = re.sub(r"Less than a second|About an? \w+|\d+ (?:second|minute|hour|day|week|month|year)s?",
                  "<DUR>", text)
    return re.sub(r" {2,}", "  ", text)


def both(args: str, stdin: str = "") -> tuple[tuple, tuple]:
    results = []
    for prog in ("docker", f"{TETHER} -H {SOCK}"):
        env_prefix = f"DOCKER_HOST={SOCK} " if prog == "docker" else ""
        proc = sh(f"{env_prefix}{prog} {args}", input=stdin)
        results.append((proc.returncode, normalise(proc.stdout), normalise(proc.stderr)))
    return results[0], results[1]


@pytest.mark.parametrize("args", [
    "ps", "ps -a", "ps -a --no-trunc", "ps -q", "ps -a -n 1", "ps -a -f name=ex",
    "ps -a --format '{{.Names}}\\t{{.Status}}'", "ps --format 'table {{.ID}}\\t{{.Ports}}'",
    "images", "images -q",
    "inspect ex", "inspect -f '{{.Name}} {{.State.ExitCode}} {{json .Args}}' ex web",
    "inspect -f '{{range $k, $v := .NetworkSettings.Ports}}{{$k}}{{end}}' web",
    "inspect -f '{{.Nope}}' ex", "inspect -f '{{foo}}' ex", "inspect nope", "inspect ex nope",
    "inspect --type image busybox", "inspect --type container nope",
    "inspect --format json ex nope",
    "logs ex", "logs --tail 1 ex", "port web", "port web 80", "port web 81", "wait ex",
    "exec web sh -c 'echo out; echo err >&2; exit 4'", "exec ex true",
    "run --rm busybox sh -c 'echo a; echo b >&2; exit 7'", "run nope:1",
    "rm nope ex2", "rm -f nope", "stop nope", "kill -s KILL nope", "start nope", "rename nope x",
    "rmi nope", "tag nope x", "run --foo", "stop",
])
def test_same_output(engine, args: str) -> None:
    docker, tether = both(args)
    assert tether == docker


def test_exec_stdin_is_copied_and_half_closed(engine) -> None:
    docker, tether = both("exec -i web cat", stdin="line1\nline2\n")
    assert tether == docker == (0, "line1\nline2\n", "")


def test_run_detached_prints_full_id(engine) -> None:
    code, out, err = both("run -d --rm busybox true")[1]
    assert (code, out, err) == (0, "<ID>\n", "")
