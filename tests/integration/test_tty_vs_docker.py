"""Differential tests: terminals and start failures of `exec`, `run -t` and `attach`, byte for byte
against Docker 20.10.

A tty's output goes through the container terminal's line discipline (onlcr: `\\n` -> `\\r\\n`) and
typed input through its input side (icrnl, echo); an exec whose command cannot be started ends
with 126 and dockerd's `OCI runtime exec failed: ...` on its stream, whatever the cause.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from typing import Iterator

import docker
import pytest

from reference import started
from test_tty import Terminal

pytestmark = pytest.mark.integration

STTY = "echo hello out; printf 'a\\tb\\n'; stty -a"
NOT_STARTABLE = ["nosuchcommand", "/etc/passwd", "/etc", "/no/such/path"]


@pytest.fixture(scope="module")
def hosts(daemon) -> Iterator[dict[str, str]]:
    with started("ttydiff") as ref:
        yield {"docker": ref.host, "tether": daemon.host}


@contextlib.contextmanager
def sleeper(host: str) -> Iterator:
    client = docker.DockerClient(base_url=host)
    ctr = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        yield ctr
    finally:
        ctr.remove(force=True)
        client.close()


def on_both(hosts: dict[str, str], fn) -> tuple:
    return fn(hosts["docker"]), fn(hosts["tether"])


def cli(host: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("docker") or "docker", "-H", host, *args],
                          capture_output=True, timeout=60)


def test_exec_tty_output(hosts):
    """exec -t: the container's terminal has Docker's termios; output gets \\r\\n."""
    def output(host):
        with sleeper(host) as ctr:
            return tuple(ctr.exec_run(["sh", "-c", STTY], tty=True))
    docker_result, tether_result = on_both(hosts, output)
    assert docker_result[1].startswith(b"hello out\r\n")
    assert tether_result == docker_result


def test_run_tty_output(hosts):
    def output(host):
        return cli(host, "run", "--rm", "-t", "busybox", "sh", "-c", STTY).stdout
    docker_out, tether_out = on_both(hosts, output)
    assert b" onlcr " in docker_out
    assert tether_out == docker_out


@pytest.mark.parametrize("cmd", NOT_STARTABLE)
@pytest.mark.parametrize("tty", [False, True])
def test_exec_not_startable(hosts, cmd, tty):
    """Not found, not executable, a directory: 126 and dockerd's message, in ExitCode too."""
    def result(host):
        with sleeper(host) as ctr:
            api = ctr.client.api
            exec_id = api.exec_create(ctr.id, [cmd], tty=tty)["Id"]
            output = api.exec_start(exec_id, tty=tty)
            return api.exec_inspect(exec_id)["ExitCode"], output
    docker_result, tether_result = on_both(hosts, result)
    assert docker_result[0] == 126
    assert tether_result == docker_result


@pytest.mark.parametrize("flags,cmd", [([], "nosuchcommand"), (["-t"], "/etc/passwd"),
                                       (["-i"], "/etc")])
def test_cli_exec_not_startable(hosts, flags, cmd):
    """The docker CLI's exit status and printed text for an exec that cannot start."""
    def result(host):
        with sleeper(host) as ctr:
            r = cli(host, "exec", *flags, ctr.id, cmd)
            return r.returncode, r.stdout, r.stderr
    docker_result, tether_result = on_both(hosts, result)
    assert docker_result[0] == 126
    assert tether_result == docker_result


@pytest.mark.parametrize("cmd", NOT_STARTABLE)
def test_run_not_startable(hosts, cmd):
    """docker run: 127 when not found, 126 when not executable; the daemon's State.ExitCode."""
    def result(host):
        r = cli(host, "run", "--name", "ttyfail", "busybox", cmd)
        state = cli(host, "inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "ttyfail")
        cli(host, "rm", "-f", "ttyfail")
        return r.returncode, r.stderr.replace(b"ttyfail", b""), state.stdout
    docker_result, tether_result = on_both(hosts, result)
    assert docker_result[0] in (126, 127)
    assert tether_result[0] == docker_result[0]
    assert tether_result[2] == docker_result[2]


READ_ECHO = ["sh", "-c", "read x; echo \"[$x]\""]


@pytest.mark.parametrize("mode", ["exec", "run", "attach"])
def test_typed_input(hosts, mode):
    """Typed input through the container's terminal: \\r becomes \\n (icrnl), echoed as \\r\\n."""
    def seen(host):
        if mode == "run":
            t = Terminal([shutil.which("docker") or "docker", "-H", host, "run", "--rm", "-it",
                          "busybox", *READ_ECHO])
            return _type(t)
        with sleeper(host) if mode == "exec" else _interactive(host) as ctr:
            argv = (["exec", "-it", ctr.id, *READ_ECHO] if mode == "exec" else ["attach", ctr.id])
            return _type(Terminal([shutil.which("docker") or "docker", "-H", host, *argv]))
    docker_seen, tether_seen = on_both(hosts, seen)
    assert b"abc\r\n[abc]\r\n" in docker_seen
    assert tether_seen == docker_seen


def _type(t: Terminal) -> bytes:
    os.write(t.fd, b"abc\r")
    t.expect(b"]\r\n")
    t.exit_code()
    return t.seen


@contextlib.contextmanager
def _interactive(host: str) -> Iterator:
    client = docker.DockerClient(base_url=host)
    ctr = client.containers.run("busybox", READ_ECHO, detach=True, tty=True, stdin_open=True)
    try:
        yield ctr
    finally:
        ctr.remove(force=True)
        client.close()


@pytest.mark.parametrize("create_tty,start_tty", [(True, False), (False, True)])
def test_exec_terminal_from_create_framing_from_start(hosts, create_tty, start_tty):
    """The process gets a terminal if the exec was created with one; the start body's Tty only
    chooses the stream's framing (docker-py's exec_start defaults it to false)."""
    def result(host):
        with sleeper(host) as ctr:
            api = ctr.client.api
            exec_id = api.exec_create(ctr.id, ["sh", "-c", "echo out; echo err >&2; tty"],
                                      tty=create_tty)["Id"]
            return api.exec_start(exec_id, tty=start_tty, demux=True)
    docker_result, tether_result = on_both(hosts, result)
    assert tether_result == docker_result


@pytest.mark.parametrize("tty", [False, True])
def test_exec_exit_codes(hosts, tty):
    """A status, and 128+N for a process killed by signal N, with or without a terminal."""
    def codes(host):
        with sleeper(host) as ctr:
            return [ctr.exec_run(["sh", "-c", script], tty=tty).exit_code
                    for script in ("exit 3", "kill -9 $$", "kill -TERM $$")]
    docker_codes, tether_codes = on_both(hosts, codes)
    assert docker_codes == [3, 137, 143]
    assert tether_codes == docker_codes


@pytest.mark.parametrize("script", [
    """printf '{"level":"error","msg":"exec failed: mine"}\\n' >&2; exit 255""",
    "printf '{' >&2; sleep 0.2; echo out; printf '}' >&2",
    "echo err >&2; exit 255",
])
def test_exec_stderr_like_runc_error(hosts, script):
    """A process's own stderr and 255 stay its own, even when they look like runc's failure."""
    def result(host):
        with sleeper(host) as ctr:
            return tuple(ctr.exec_run(["sh", "-c", script], demux=True))
    docker_result, tether_result = on_both(hosts, result)
    assert docker_result[0] in (0, 255)
    assert tether_result == docker_result
