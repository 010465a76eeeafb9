"""A real registry for tests: Debian's docker-registry (distribution 2.8) on a loopback address.

Each engine under test lives in a network namespace of its own, and a registry on the host's
loopback is not reachable from there. So a test starts one registry process per namespace it
needs (the tether daemon's, the reference engine's, the host's for skopeo), all serving the same
storage directory: what one engine pushes through its registry, the others pull through theirs.
The filesystem driver keeps no state outside that directory, so this is safe.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    """One htpasswd entry; distribution only accepts bcrypt hashes."""
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"


class LocalRegistry:
    """One registry process serving `storage` on `ip`:`port` inside `netns` (None: host)."""

    def __init__(self, storage: Path, netns: str | None, port: int,
                 users: dict[str, str] | None = None, token_auth: str = "", ip: str = "127.0.0.1",
                 tls: bool = False) -> None:
        self.storage = storage
        self.netns = netns
        self.port = port
        self.address = f"{ip}:{port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="i6a-registry-", dir="/var/tmp"))
        self.proc: subprocess.Popen | None = None
        auth = ""
        if users:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: tether-test\n    path: {htpasswd}\n"
        auth = token_auth or auth
        self.scheme = "https" if tls else "http"
        tls_conf = ""
        if tls:
            cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                            "-out", str(cert), "-days", "1", "-subj", f"/CN={ip}",
                            "-addext", f"subjectAltName=IP:{ip}"], check=True, capture_output=True)
            tls_conf = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        self.config = self.workdir / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n  secret: tether-test-secret\n{tls_conf}{auth}")

    def _prefix(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []

    def start(self) -> None:
        log = open(self.workdir / "registry.log", "wb")
        self.proc = subprocess.Popen([*self._prefix(), REGISTRY_BIN, "serve", str(self.config)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run([*self._prefix(), "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                    f"{self.scheme}://{self.address}/v2/"], capture_output=True, text=True)
            if probe.stdout in ("200", "401"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"registry did not start: {self.log()}")

    def log(self) -> str:
        try:
            return (self.workdir / "registry.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def requests(self, method: str, path: str) -> int:
        """How many `method path` requests the access log shows (its lines quote the request)."""
        text = (self.workdir / "registry.log").read_text(errors="replace")
        return text.count(f'"{method} {path} HTTP/1.1"')

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


class TokenServer:
    """tokenserver.py in `netns` on a port of its own, with a fresh key and self-signed cert."""

    def __init__(self, netns: str | None, account: str) -> None:
        self.netns = netns
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="i6a-token-", dir="/var/tmp"))
        self.key, self.cert = self.workdir / "key.pem", self.workdir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=tether-test-token"],
                       check=True, capture_output=True)
        self.account = account
        self.proc: subprocess.Popen | None = None

    def registry_auth(self) -> str:
        """The `auth:` section of a registry config that trusts this server's tokens."""
        return (f"auth:\n  token:\n    realm: http://127.0.0.1:{self.port}/token\n    service: tether-test\n"
                f"    issuer: tether-test-issuer\n    rootcertbundle: {self.cert}\n")

    def start(self) -> None:
        prefix = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, str(Path(__file__).with_name("tokenserver.py")), str(self.port),
             str(self.key), str(self.cert), "tether-test-issuer", "tether-test", self.account],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run([*prefix, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    f"http://127.0.0.1:{self.port}/token"], capture_output=True, text=True)
            if probe.stdout == "401":
                return
            time.sleep(0.1)
        raise RuntimeError("token server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def token_registry(netns: str | None, user: str, password: str) -> Iterator[LocalRegistry]:
    """A registry in `netns` that wants bearer tokens from a token server beside it, which
    issues them to `user`:`password` only."""
    storage = Path(tempfile.mkdtemp(prefix="i6a-registry-data-", dir="/var/tmp"))
    server = TokenServer(netns, f"{user}:{password}")
    registry: LocalRegistry | None = None
    try:
        server.start()
        registry = LocalRegistry(storage, netns, free_port(), token_auth=server.registry_auth())
        registry.start()
        yield registry
    finally:
        if registry is not None:
            registry.stop()
        server.stop()
        shutil.rmtree(storage, ignore_errors=True)


@contextlib.contextmanager
def registries(netns_list: list[str | None], users: dict[str, str] | None = None
               ) -> Iterator[list[LocalRegistry]]:
    """Registries on one shared storage and one port, one in each of `netns_list` (None: the
    host), all stopped and the storage removed afterwards."""
    storage = Path(tempfile.mkdtemp(prefix="i6a-registry-data-", dir="/var/tmp"))
    port = free_port()
    started: list[LocalRegistry] = []
    try:
        for netns in netns_list:
            reg = LocalRegistry(storage, netns, port, users)
            started.append(reg)
            reg.start()
        yield started
    finally:
        for reg in started:
            reg.stop()
        shutil.rmtree(storage, ignore_errors=True)


def forget_test_images(daemon) -> None:
    """Remove every tag and repo digest of the tests' registries (`.../i6a/...`) from a shared
    daemon, so that later tests see busybox as it was (pushing adds RepoDigests to it)."""
    status, images = daemon.api("GET", "/images/json")
    assert status == 200, images
    for image in images:
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if "/i6a/" in ref:
                daemon.api("DELETE", f"/images/{ref}")
