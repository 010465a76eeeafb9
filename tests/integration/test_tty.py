"""`run -it` and `exec -it` in a real terminal (a pty), as a person would type them."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time

import pytest

from harness import BIN
from test_lifecycle import out

pytestmark = pytest.mark.integration


class Terminal:
    """A command on a pty of 40x100; `expect` reads until a text shows up."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(argv[0], argv)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        self.seen = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, text: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"{text!r} not seen in {self.seen[-500:]!r}")
            try:
                self.seen += os.read(self.fd, 4096)
            except OSError as exc:
                raise AssertionError(f"{text!r} not seen before EOF: {self.seen[-500:]!r}") from exc

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.kill(self.pid, 28)  # SIGWINCH reaches the CLI as it would from a terminal emulator

    def exit_code(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.seen += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the CLI did not exit")


def test_run_it_shell(daemon):
    t = Terminal([str(BIN / "tether"), "-H", daemon.host, "run", "--rm", "-it", "busybox", "sh"])
    t.expect(b"# ")
    t.send(b"stty size; echo $((6*7)); tty\n")
    t.expect(b"40 100")
    t.expect(b"42")
    t.expect(b"/dev/pts/0")
    t.resize(30, 80)
    time.sleep(0.5)
    t.send(b"stty size\n")
    t.expect(b"30 80")
    t.send(b"exit 5\n")
    assert t.exit_code() == 5


def test_exec_it(daemon):
    cid = out(daemon.tether("run", "-d", "busybox", "sleep", "60"))
    try:
        t = Terminal([str(BIN / "tether"), "-H", daemon.host, "exec", "-it", cid, "sh"])
        t.expect(b"# ")
        t.send(b"echo $TERM; stty size\n")
        t.expect(b"xterm")
        t.expect(b"40 100")
        t.resize(30, 80)  # set on the container terminal's master, which the daemon holds
        time.sleep(0.5)
        t.send(b"stty size\n")
        t.expect(b"30 80")
        t.send(b"exit 2\n")
        assert t.exit_code() == 2
    finally:
        daemon.tether("rm", "-f", cid)


def test_exec_sessions_of_a_killed_daemon_are_cleared(fresh_daemon):
    """A tty exec's session directory (runc's pid file, the console socket) outlives a daemon
    killed with -9; the next daemon removes it."""
    d = fresh_daemon
    cid = out(d.tether("run", "-d", "busybox", "sleep", "60"))
    status, made = d.api("POST", f"/containers/{cid}/exec", {"Cmd": ["sleep", "30"], "Tty": True})
    assert status == 201, made
    assert d.api("POST", f"/exec/{made['Id']}/start", {"Detach": True, "Tty": True})[0] == 200
    sessions = d.exec_root / "runtime" / "exec"
    assert len(list(sessions.iterdir())) == 1
    d.kill9()
    d.start()
    assert not sessions.exists() or list(sessions.iterdir()) == []
    d.tether("rm", "-f", cid)
