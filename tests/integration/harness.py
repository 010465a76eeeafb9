"""A real tetherd in a network namespace of its own, with its own data root, exec root and socket.

Tests drive it through the tether CLI, the docker CLI and the docker SDK. `leaks()` lists what
the daemon's containers still hold on the host (mounts, namespaces, runc state, conmon
processes), so tests can assert that removing a container removes everything made for it.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".venv" / "bin"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def api(sock: str, method: str, path: str, body: Any = None,
        timeout: float = 30) -> tuple[int, Any]:
    """One request to an engine's socket (tetherd's or the reference's): the status and the
    JSON reply decoded (raw bytes when the reply is not JSON)."""
    conn = UnixHTTPConnection(sock, timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, payload, headers)
        resp = conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("Content-Type") or ""
        return resp.status, json.loads(data) if data and "json" in ctype else data
    finally:
        conn.close()


class Daemon:
    """One test daemon; `start()`, `kill9()` and `stop()` may be called again to restart it."""

    def __init__(self, *flags: str, wrapper: Sequence[str] = ()) -> None:
        """`wrapper`: a command that runs tetherd's command line given as its arguments."""
        self.flags = list(flags)
        self.wrapper = list(wrapper)
        tag = uuid.uuid4().hex[:8]
        self.netns = f"tether-it-{tag}"
        self.root = Path(tempfile.mkdtemp(prefix=f"tether-it-{tag}-", dir="/var/tmp"))
        self.data_root = self.root / "data"
        self.exec_root = Path(f"/run/tether-it-{tag}")
        self.sock = str(self.exec_root / "tether.sock")
        self.host = f"unix://{self.sock}"
        self.log_path = self.root / "tetherd.log"
        self.proc: subprocess.Popen | None = None
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)

    # ---- process ------------------------------------------------------------------------

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.wrapper, "nsenter", f"--net=/run/netns/{self.netns}", str(BIN / "tetherd"),
             "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
             "-H", self.host, "--log-level", "debug", *self.flags],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tetherd exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.api("GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"tetherd did not answer:\n{self.log()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    # ---- clients ------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None,
            timeout: float = 30) -> tuple[int, Any]:
        return api(self.sock, method, path, body, timeout)

    def _run(self, argv: list[str], env: dict[str, str], input: bytes | None,
             timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                              env={**os.environ, **env})

    def tether(self, *args: str, input: bytes | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        """The tether CLI against this daemon."""
        return self._run([str(BIN / "tether"), "-H", self.host, *args], {}, input, timeout)

    def docker(self, *args: str, input: bytes | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
        """The stock docker CLI against this daemon."""
        return self._run(["docker", *args], {"DOCKER_HOST": self.host}, input, timeout)

    def sdk(self):
        import docker
        return docker.DockerClient(base_url=self.host, timeout=60)

    # ---- clean-up checks ----------------------------------------------------------------

    def leaks(self, cid: str) -> list[str]:
        """What is left on the host of container `cid` (empty when it is fully removed)."""
        found = []
        mounts = Path("/proc/self/mountinfo").read_text()
        if cid in mounts:
            found += [line for line in mounts.splitlines() if cid in line]
        for base in (self.exec_root, self.data_root):
            # os.walk, not rglob: a removed volume's directory is erased in the background and
            # may vanish mid-walk, which rglob reports as an error
            for top, dirs, names in os.walk(base):
                found += [os.path.join(top, n) for n in dirs + names if cid in n]
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        found += [line for line in ps.splitlines() if cid in line]
        return found

    def remove_all(self) -> None:
        status, items = self.api("GET", "/containers/json?all=1")
        for item in items if status == 200 else []:
            self.api("DELETE", f"/containers/{item['Id']}?force=1")

    def destroy(self) -> None:
        """Tear everything down, whatever state the tests left it in."""
        try:
            if self.proc and self.proc.poll() is None:
                self.remove_all()
        finally:
            self.stop()
            _delete_runc_containers(self.exec_root)
            _kill_processes_mentioning(str(self.exec_root))
            _unmount_below(self.root)
            _unmount_below(self.exec_root)
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.exec_root, ignore_errors=True)
            subprocess.run(["ip", "netns", "del", self.netns], check=False)


def _delete_runc_containers(exec_root: Path) -> None:
    """Containers a broken test left behind: found by runc's state files, force-deleted."""
    if not exec_root.exists():
        return
    # os.walk, not rglob: a conmon still exiting removes its dirs while we walk them
    for top, _, files in os.walk(exec_root):
        if "state.json" in files:
            state = Path(top)
            subprocess.run(["runc", "--root", str(state.parent), "delete", "--force", state.name],
                           check=False, capture_output=True)


def _kill_processes_mentioning(text: str) -> None:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in ps.splitlines()[1:]:
        pid, _, args = line.strip().partition(" ")
        if text in args and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _unmount_below(path: Path) -> None:
    prefix = str(path)
    targets = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if line.split()[4].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
