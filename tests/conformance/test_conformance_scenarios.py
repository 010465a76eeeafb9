"""The scenario runner: every command of tests/conformance/scenarios/*.txt through the docker CLI,
against tetherd and against a reference Docker 20.10, compared line by line once normalised.

Each scenario runs whole on both engines the first time one of its commands is asked for (the
commands depend on one another), then each command is its own test case, so a report names
exactly the commands that differ. Containers a scenario leaves are removed after it.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from harness import Daemon
from reference import REFDOCKER, ReferenceEngine
from scenario import Step, load, normalise

pytestmark = pytest.mark.integration

STEPS = load(Path(__file__).parent / "scenarios")
Outcome = tuple[int, str, str]


class Engine:
    """A docker CLI bound to one engine, plus the scenario results it has produced."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.results: dict[str, list[Outcome]] = {}

    def docker(self, argv: list[str]) -> Outcome:
        proc = subprocess.run(["docker", *argv], capture_output=True, timeout=90,
                              env={**os.environ, "DOCKER_HOST": self.host})
        return proc.returncode, normalise(proc.stdout.decode()), normalise(proc.stderr.decode())

    def outcome(self, step: Step) -> Outcome:
        if step.scenario not in self.results:
            steps = [s for s in STEPS if s.scenario == step.scenario]
            try:
                self.results[step.scenario] = [self.docker(s.argv) for s in steps]
            finally:
                self.clean()
        return self.results[step.scenario][step.index]

    def clean(self) -> None:
        ids = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "DOCKER_HOST": self.host}).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120,
                           env={**os.environ, "DOCKER_HOST": self.host})


@pytest.fixture(scope="module")
def tetherd() -> Iterator[Engine]:
    daemon = Daemon()
    try:
        daemon.start()
        status, body = daemon.api("POST", "/tether/bootstrap/busybox", timeout=120)
        assert status == 200, body
        yield Engine(daemon.host)
    finally:
        daemon.destroy()


@pytest.fixture(scope="module")
def reference() -> Iterator[Engine]:
    ref = ReferenceEngine("conformance")
    try:
        try:
            ref.start()
        except subprocess.CalledProcessError as exc:
            if exc.cmd[:2] == ["bash", str(REFDOCKER)]:
                pytest.skip(f"REFERENCE ENGINE UNAVAILABLE: refdocker.sh failed to start "
                            f"({exc.returncode}): {exc.stderr!r}; conformance NOT checked")
            raise
        yield Engine(ref.host)
    finally:
        ref.stop()


def test_scenarios_are_big_enough() -> None:
    """The issue asks for lifecycle, ports and links scenarios, at least 60 commands in all."""
    assert {s.scenario for s in STEPS} >= {"lifecycle", "ports", "links"}
    assert len(STEPS) >= 60


@pytest.mark.parametrize("step", STEPS, ids=[s.case_id for s in STEPS])
def test_command(tetherd: Engine, reference: Engine, step: Step) -> None:
    ours, theirs = tetherd.outcome(step), reference.outcome(step)
    assert ours[0] == theirs[0], f"exit code: tetherd {ours} docker {theirs}"
    assert ours[1].splitlines() == theirs[1].splitlines()
    assert ours[2].splitlines() == theirs[2].splitlines()
