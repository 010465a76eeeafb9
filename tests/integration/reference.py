"""The reference engine: Docker 20.10 from Debian in a network namespace of its own.

Started with the project's own tests/reference/refdocker.sh (it installs docker.io when missing)
and given the same busybox image tether bootstraps (same files, same ENV and CMD), so that the
same commands can be run against both engines and their outputs compared.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tether.image.bootstrap import CHANGES, busybox_rootfs_tar

REPO = Path(__file__).resolve().parents[2]
REFDOCKER = REPO / "tests" / "reference" / "refdocker.sh"


class ReferenceEngine:
    def __init__(self, name: str, flags: tuple[str, ...] = ()) -> None:
        self.flags = flags  # further dockerd flags (refdocker.sh's REFDOCKER_FLAGS)
        # the checkout's tag in the name: two checkouts running the same differential test at
        # once (worktrees, a CI clone beside a developer's tree) must not share, or stop, an engine
        self.name = f"{name}-{hashlib.sha1(str(REPO).encode()).hexdigest()[:6]}"
        self.host = f"unix:///run/ref-{self.name}.sock"
        self.data_root = Path(f"/var/lib/ref-{self.name}")
        # the runc bundles (config.json) of its containers: refdocker.sh keeps each engine's own
        # containerd state under the engine's exec root
        self.bundles = (Path(f"/run/ref-{self.name}/containerd/io.containerd.runtime.v2.task")
                        / f"ref-{self.name}")

    def start(self) -> None:
        env = {**os.environ, "REFDOCKER_FLAGS": " ".join(self.flags)} if self.flags else None
        subprocess.run(["bash", str(REFDOCKER), "start", self.name], check=True,
                       capture_output=True, timeout=300, env=env)
        tar = io.BytesIO()
        busybox_rootfs_tar(tar)
        changes = [arg for change in CHANGES for arg in ("-c", change)]
        self.docker("import", *changes, "-", "busybox:latest", input=tar.getvalue(), check=True)

    def stop(self) -> None:
        """Stop the engine: the script removes its containers, namespace, mounts and files."""
        subprocess.run(["bash", str(REFDOCKER), "stop", self.name], capture_output=True,
                       timeout=300)

    def in_netns(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command in the engine's network namespace (where its published ports are)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.name}", *argv],
                              capture_output=True, timeout=timeout)

    def docker(self, *args: str, input: bytes | None = None, check: bool = False,
               timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], input=input, capture_output=True, check=check,
                              timeout=timeout, env={**os.environ, "DOCKER_HOST": self.host})


@contextlib.contextmanager
def started(name: str, flags: tuple[str, ...] = ()) -> Iterator[ReferenceEngine]:
    """A reference engine of its own, started, and stopped (its containers, namespace, mounts
    and files gone) however the block ends, a failed start included."""
    ref = ReferenceEngine(name, flags)
    try:
        ref.start()
        yield ref
    finally:
        ref.stop()


def reference_fixture(name: str, flags: tuple[str, ...] = ()) -> Any:
    """A module-scoped fixture of a started reference engine (`started`), for a differential
    test module: `ref = reference_fixture("health")`. pytest names the fixture after the module
    attribute it is assigned to."""
    @pytest.fixture(scope="module")
    def engine() -> Iterator[ReferenceEngine]:
        with started(name, flags) as ref:
            yield ref
    return engine


@contextlib.contextmanager
def side_by_side(name: str, tether_docker: Callable[..., subprocess.CompletedProcess]
                 ) -> Iterator[dict[str, Callable[..., subprocess.CompletedProcess]]]:
    """The docker CLI against a reference engine of its own and against tetherd, by name."""
    with started(name) as ref:
        yield {"docker": ref.docker, "tether": tether_docker}


def run_both(engines: dict[str, Callable[..., subprocess.CompletedProcess]],
             normalise: Callable[[bytes], str], *args: str,
             input: bytes | None = None) -> tuple[tuple, tuple]:
    """The same docker CLI command on both engines: (exit code, stdout, stderr), normalised."""
    results = []
    for name in ("docker", "tether"):
        r = engines[name](*args, input=input)
        results.append((r.returncode, normalise(r.stdout), normalise(r.stderr)))
    return results[0], results[1]
