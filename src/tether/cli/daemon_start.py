"""Start tetherd in the background when the default socket does not answer.

Like Podman's socket activation, this lets a first-time user type `tether run ...` without
starting a daemon by hand. Only root may do it (the daemon needs root), and only for the
default endpoint: starting a daemon for someone else's -H would be surprising.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from tether.cli.client import CliError

LOG_PATH = Path("/run/tether/tetherd.log")
WAIT_SECONDS = 10.0


def daemon_executable() -> Path:
    """`tetherd` installed next to the running interpreter (the same venv's bin dir)."""
    return Path(sys.executable).parent / "tetherd"


def answers(path: str) -> bool:
    """True when something accepts connections on the unix socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def start_daemon(sock_path: str, executable: Path | None = None, log_path: Path = LOG_PATH,
                 timeout: float = WAIT_SECONDS) -> None:
    """Launch the daemon detached (own session, stdio to the log) and wait for its socket."""
    import subprocess

    exe = executable or daemon_executable()
    if not exe.exists():
        raise CliError(f"Cannot start the tether daemon: {exe} not found")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # root's only, as the exec root it lies in: that one stays traversable for the API socket
    with open(log_path, "ab", opener=lambda path, flags: os.open(path, flags, 0o600)) as log:
        os.fchmod(log.fileno(), 0o600)
        proc = subprocess.Popen(
            [str(exe)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(sock_path):
            return
        if proc.poll() is not None:
            raise CliError(f"the tether daemon exited with code {proc.returncode}; see {log_path}")
        time.sleep(0.05)
    raise CliError(f"the tether daemon did not answer on {sock_path} within {timeout:g}s;"
                   f" see {log_path}")


def may_autostart(host: str, default_host: str) -> bool:
    """Only the default endpoint, and only as root."""
    return host == default_host and os.geteuid() == 0
