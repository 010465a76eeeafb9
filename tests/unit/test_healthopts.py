"""cli/healthopts.py: the docker CLI's health flags into the create body."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tether.cli.client import CliError
from tether.cli.healthopts import HealthFlags, healthcheck

S = 10**9


def test_no_flags_leave_the_images_check() -> None:
    assert healthcheck(HealthFlags()) is None


def test_flags_to_body() -> None:
    assert healthcheck(HealthFlags(cmd="exit 0", interval=S, retries=2)) == \
        {"Test": ["CMD-SHELL", "exit 0"], "Interval": S, "Retries": 2}
    assert healthcheck(HealthFlags(timeout=5 * S, start_period=S)) == {"Timeout": 5 * S, "StartPeriod": S}
    assert healthcheck(HealthFlags(disabled=True)) == {"Test": ["NONE"]}


@pytest.mark.parametrize("flags, text", [
    (HealthFlags(disabled=True, retries=1), "--no-healthcheck conflicts with --health-* options"),
    (HealthFlags(interval=-S), "--health-interval cannot be negative"),
    (HealthFlags(timeout=-S), "--health-timeout cannot be negative"),
    (HealthFlags(retries=-1), "--health-retries cannot be negative"),
    (HealthFlags(start_period=-1), "--health-start-period cannot be negative"),
])
def test_docker_cli_refusals(flags: HealthFlags, text: str) -> None:
    with pytest.raises(CliError) as caught:
        healthcheck(flags)
    assert caught.value.message == text and caught.value.code == 125


@pytest.mark.parametrize("args, text", [
    (["--health-interval", "5x"], 'invalid argument "5x" for "--health-interval" flag: '
                                   'time: invalid duration "5x"'),
    (["--health-retries", "x"], 'invalid argument "x" for "--health-retries" flag: '
                                'strconv.ParseInt: parsing "x": invalid syntax'),
])
def test_malformed_values_are_usage_errors(args: list[str], text: str) -> None:
    env = {**os.environ, "TETHER_HOST": "unix:///nonexistent", "DOCKER_HOST": "unix:///nonexistent"}
    done = subprocess.run([sys.executable, "-c", "from tether.cli.main import main; main()",
                           "create", *args, "busybox"], capture_output=True, text=True, env=env)
    assert done.returncode == 125 and text in done.stderr
