"""The reference engine: Docker 20.10 from Debian in a network namespace of its own.

Started with shared/reference/refdocker.sh (beside the checkout, as CI lays it out) and given the
same busybox image tether bootstraps (same files, same ENV and CMD), so that the same commands can
be run against both engines and their outputs compared.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

from tether.image.bootstrap import CHANGES, busybox_rootfs_tar

REPO = Path(__file__).resolve().parents[2]


def _find_refdocker() -> Path:
    """shared/ sits beside the checkout (CI), or beside the directory of worktrees (a worktree
    under wt/): the nearest ancestor that has it wins."""
    candidates = [parent / "shared" / "reference" / "refdocker.sh" for parent in REPO.parents]
    return next((c for c in candidates if c.exists()), candidates[0])


REFDOCKER = _find_refdocker()


class ReferenceEngine:
    def __init__(self, name: str) -> None:
        self.name = name
        self.host = f"unix:///run/ref-{name}.sock"

    def start(self) -> None:
        if not REFDOCKER.exists():
            raise RuntimeError(f"{REFDOCKER} is missing: the reference engine cannot start")
        subprocess.run(["bash", str(REFDOCKER), "start", self.name], check=True,
                       capture_output=True, timeout=300)
        tar = io.BytesIO()
        busybox_rootfs_tar(tar)
        changes = [arg for change in CHANGES for arg in ("-c", change)]
        self.docker("import", *changes, "-", "busybox:latest", input=tar.getvalue(), check=True)

    def stop(self) -> None:
        """Stop the engine; refdocker.sh can leave its netns mounts busy, so sweep them up."""
        subprocess.run(["bash", str(REFDOCKER), "stop", self.name], capture_output=True,
                       timeout=300)
        for root in (Path(f"/run/ref-{self.name}"), Path(f"/var/lib/ref-{self.name}")):
            mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                      if line.split()[4].startswith(str(root))]
            for target in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", target], capture_output=True)
            subprocess.run(["rm", "-rf", str(root)], capture_output=True)
        self._stop_containerd_if_last()

    def _stop_containerd_if_last(self) -> None:
        """refdocker.sh stops the shared containerd after the last engine, but only if that
        engine's dockerd had already removed its pid file: wait for it, then do the same check."""
        pidfile = Path(f"/run/ref-{self.name}.pid")
        deadline = time.monotonic() + 20
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        others = [p for p in Path("/run").glob("ref-*.pid") if p.name != "ref-containerd.pid"]
        containerd = Path("/run/ref-containerd.pid")
        if others or not containerd.exists():
            return
        try:
            pid = int(containerd.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pid = 0
        # the next start must not find a dying containerd and hand it to a new dockerd
        deadline = time.monotonic() + 20
        while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        containerd.unlink(missing_ok=True)

    def docker(self, *args: str, input: bytes | None = None, check: bool = False,
               timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], input=input, capture_output=True, check=check,
                              timeout=timeout, env={**os.environ, "DOCKER_HOST": self.host})


@contextlib.contextmanager
def side_by_side(name: str, tether_docker: Callable[..., subprocess.CompletedProcess]
                 ) -> Iterator[dict[str, Callable[..., subprocess.CompletedProcess]]]:
    """The docker CLI against a reference engine of its own and against tetherd, by name."""
    ref = ReferenceEngine(name)
    try:
        ref.start()
        yield {"docker": ref.docker, "tether": tether_docker}
    finally:
        ref.stop()


def run_both(engines: dict[str, Callable[..., subprocess.CompletedProcess]],
             normalise: Callable[[bytes], str], *args: str,
             input: bytes | None = None) -> tuple[tuple, tuple]:
    """The same docker CLI command on both engines: (exit code, stdout, stderr), normalised."""
    results = []
    for name in ("docker", "tether"):
        r = engines[name](*args, input=input)
        results.append((r.returncode, normalise(r.stdout), normalise(r.stderr)))
    return results[0], results[1]
