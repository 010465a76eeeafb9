"""Differential tests: the same docker CLI commands against tetherd and against Docker 20.10.

Outputs are compared after normalising what legitimately differs between two engines (IDs, times,
and the durations and padding that follow from them). Whatever is left must be the same bytes and
the same exit code: that is what a Docker user sees.
"""
from __future__ import annotations

import re

import pytest

from reference import run_both, side_by_side

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engines(daemon):
    with side_by_side("enginediff", daemon.docker) as engines:
        yield engines


def normalise(text: bytes) -> str:
    out = text.decode(errors="replace")
    out = re.sub(r"[0-9a-f]{64}", "<ID>", out)
    out = re.sub(r"\b[0-9a-f]{12}\b", "<SHORT>", out)
    out = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<TIME>", out)
    out = re.sub(r"Less than a second|About an? \w+|\d+ (?:second|minute|hour|day)s?", "<DUR>", out)
    return re.sub(r" {2,}", "  ", out)


def both(engines, *args: str, input: bytes | None = None) -> tuple[tuple, tuple]:
    return run_both(engines, normalise, *args, input=input)


@pytest.mark.parametrize("args", [
    ["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"],
    ["run", "--rm", "-e", "A=1", "-e", "B", "busybox", "sh", "-c", "env | grep -v HOSTNAME | sort"],
    ["run", "--rm", "-t", "busybox", "sh", "-c", "echo $TERM; env | grep -c ."],
    ["run", "--rm", "-u", "nobody", "busybox", "id"],
    ["run", "--rm", "-u", "1234:5678", "busybox", "sh", "-c", "id; echo $HOME"],
    ["run", "--rm", "-w", "/made/for/me", "busybox", "pwd"],
    ["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"],
    ["run", "--rm", "-h", "custom", "busybox", "sh", "-c", "hostname; cat /etc/hostname"],
    ["run", "--rm", "busybox", "sh", "-c", "grep Cap /proc/self/status"],
    ["run", "--rm", "busybox", "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"],
    ["run", "--rm", "busybox", "sh", "-c", "cat /proc/keys | wc -c; ls /proc/acpi 2>&1 | wc -l"],
    ["run", "--rm", "busybox", "nosuchcommand"],
    ["run", "--rm", "-u", "nosuchuser", "busybox", "true"],
    ["run", "--rm", "--name", "bad/name", "busybox", "true"],
    ["inspect", "nosuch"],
    ["rm", "nosuch"],
    ["stop", "nosuch"],
    ["logs", "nosuch"],
    ["exec", "nosuch", "true"],
    ["rmi", "nosuch"],
    ["tag", "nosuch", "x"],
])
def test_same_result(engines, args):
    docker, tether = both(engines, *args)
    assert tether == docker


def test_missing_image(engines):
    """Both try Docker Hub, unreachable here: the messages differ only in the resolver's detail
    (Docker names the nameserver it could not reach)."""
    docker, tether = both(engines, "run", "--rm", "nosuchimage:1")
    assert docker[0] == tether[0] == 125
    first = ("Unable to find image 'nosuchimage:1' locally\ndocker: Error response from daemon: "
             'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io')
    assert docker[2].startswith(first) and tether[2].startswith(first)


def test_same_lifecycle_reports(engines):
    """A container through its states: the reports a user reads at each step are the same."""
    steps = [
        ["create", "--name", "life", "-l", "k=v", "busybox", "sh", "-c", "echo hi; sleep 60"],
        ["ps", "-a", "--format", "{{.Names}}|{{.Status}}|{{.Command}}|{{.Labels}}"],
        ["inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.Path}} "
                          "{{json .Args}} {{.RestartCount}} {{len .Config.Hostname}}", "life"],
        ["start", "life"],
        ["start", "life"],
        ["exec", "life", "sh", "-c", "exit 4"],
        ["exec", "-i", "life", "cat"],
        ["ps", "--format", "{{.Names}}|{{.Status}}"],
        ["rm", "life"],
        ["kill", "-s", "NOPE", "life"],
        ["stop", "-t", "1", "life"],
        ["stop", "life"],
        ["kill", "life"],
        ["exec", "life", "true"],
        ["logs", "life"],
        ["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "life"],
        ["ps", "-a", "--format", "{{.Names}}|{{.Status}}"],
        ["create", "--name", "life", "busybox"],
        ["rename", "life", "life2"],
        ["rm", "life2"],
        ["wait", "life2"],
    ]
    for step in steps:
        docker, tether = both(engines, *step, input=b"piped\n")
        assert tether == docker, step


def test_same_restart_policy_errors(engines):
    for policy in ("on-failure:-1", "always:3", "sometimes"):
        docker, tether = both(engines, "create", "--restart", policy, "busybox")
        assert tether == docker, policy
