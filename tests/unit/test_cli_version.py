"""`tether --version` / `-v`: docker's one-line shape, the installed package's version, no daemon.

The CLI runs as a subprocess with an endpoint where nothing listens (and which is not the default,
so nothing is autostarted): the flag must answer without contacting a daemon.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

import tether
from tether.cli.main import version_line

NOWHERE = "unix:///nonexistent/tether.sock"


def _tether(*args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TETHER_HOST": NOWHERE, "DOCKER_HOST": NOWHERE}
    # what the `tether` entry point runs (`-m tether.cli.main` would load main.py twice)
    entry = "from tether.cli.main import main; main()"
    return subprocess.run([sys.executable, *python_flags, "-c", entry, *args],
                          capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version_flag_prints_the_version_line_without_a_daemon(flag: str) -> None:
    done = _tether(flag)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"tether version {tether.__version__}\n", "")


def test_version_line_is_dockers_shape_with_the_installed_version() -> None:
    # docker: "Docker version 28.2.2, build e6534b4"; pyproject.toml takes tether.__version__
    assert re.fullmatch(r"tether version \d+\.\d+\.\d+", version_line())
    assert version_line() == f"tether version {version('tether')}"


def test_version_flag_before_a_command_runs_the_command_as_docker_does() -> None:
    # `docker -v ps` lists containers; here `ps` runs and finds no daemon at NOWHERE
    done = _tether("-v", "ps")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Cannot connect to the tether daemon at " + NOWHERE in done.stderr


def test_version_flag_costs_no_importlib_metadata() -> None:
    # the CLI's start-up time matters on every invocation; importlib.metadata scans site-packages
    done = _tether("--version", python_flags=("-X", "importtime"))
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "tether.cli.main" in imported
    assert "importlib.metadata" not in imported
