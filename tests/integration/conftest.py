"""Integration fixtures: one real tetherd per test session, in its own network namespace."""
from __future__ import annotations

import contextlib
import os
import shutil
from typing import Callable, Iterator

import pytest

from cbin import StaticBinaries
from harness import Daemon


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root"
    for tool in ("runc", "conmon", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed (run `make install`)"
    return None


@contextlib.contextmanager
def running_daemon(*flags: str,
                   prepare: Callable[[Daemon], None] | None = None) -> Iterator[Daemon]:
    """A started daemon with the busybox image, torn down whatever happens. `prepare(d)` runs
    before the start (a test's own data root filesystem, say); destroy undoes what it mounted."""
    reason = _missing()
    if reason:
        pytest.fail(reason)  # never a silent skip: CI installs everything these tests need
    d = Daemon(*flags)
    try:
        if prepare is not None:
            prepare(d)
        d.start()
        status, body = d.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert status == 200, body
        yield d
    finally:
        d.destroy()


@pytest.fixture(scope="session")
def daemon() -> Iterator[Daemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture
def fresh_daemon() -> Iterator[Daemon]:
    """A daemon of a test's own, for tests that kill or restart it."""
    with running_daemon() as d:
        yield d


@pytest.fixture(scope="session")
def cbin() -> Iterator[StaticBinaries]:
    """Static C test programs (cbin.py), removed when the session ends."""
    binaries = StaticBinaries()
    try:
        yield binaries
    finally:
        binaries.remove()
