"""The stock docker CLI's `run -it --rm busybox sh` in a real pty against tetherd: what a person
typing into a terminal sees, the window size following resizes, and `exit 5` becoming the CLI's
exit code (with the container removed afterwards by --rm)."""
from __future__ import annotations

import shutil
import time

import pytest

from test_tty import Terminal

pytestmark = pytest.mark.integration


def docker_terminal(host: str, *args: str) -> Terminal:
    """The docker CLI on a pty; DOCKER_HOST is passed in argv (-H) since pty.fork keeps our env."""
    return Terminal([shutil.which("docker") or "/usr/local/bin/docker", "-H", host, *args])


def test_docker_run_it_shell(daemon):
    t = docker_terminal(daemon.host, "run", "-it", "--rm", "--name", "dockerit1", "busybox", "sh")
    try:
        t.expect(b"# ")
        t.send(b"echo $((6*7))x; tty\n")
        t.expect(b"42x")
        t.expect(b"/dev/pts/0")
        t.send(b"stty size\n")
        t.expect(b"40 100")
        t.resize(30, 80)
        time.sleep(0.5)
        t.send(b"stty size\n")
        t.expect(b"30 80")
        t.send(b"exit 5\n")
        assert t.exit_code() == 5
    finally:
        daemon.api("DELETE", "/containers/dockerit1?force=1")
    status, _ = daemon.api("GET", "/containers/dockerit1/json")
    assert status == 404, "--rm left the container behind"


def test_docker_run_it_ctrl_d_exits_zero(daemon):
    """EOF typed at the shell (^D in raw mode goes to the container's tty) ends it with 0."""
    t = docker_terminal(daemon.host, "run", "-it", "--rm", "--name", "dockerit2", "busybox", "sh")
    try:
        t.expect(b"# ")
        t.send(b"\x04")
        assert t.exit_code() == 0
    finally:
        daemon.api("DELETE", "/containers/dockerit2?force=1")
