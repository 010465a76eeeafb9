"""`run`/`create`'s health flags: --health-cmd, --health-interval, --health-timeout,
--health-retries, --health-start-period and --no-healthcheck, read as the docker CLI reads them
(Go durations, its texts) into the create body's Healthcheck."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click

from tether.cli.client import CliError
from tether.rules.times import go_duration_ns


@dataclass(frozen=True)
class HealthFlags:
    cmd: str = ""
    interval: int = 0        # nanoseconds, as the API takes them
    timeout: int = 0
    start_period: int = 0
    retries: int = 0
    disabled: bool = False   # --no-healthcheck


def healthcheck(flags: HealthFlags) -> dict[str, Any] | None:
    """The body's Healthcheck (None: the image's applies), with the docker CLI's refusals."""
    settings = (flags.cmd, flags.interval, flags.timeout, flags.start_period, flags.retries)
    if flags.disabled:
        if any(settings):
            raise CliError("--no-healthcheck conflicts with --health-* options", code=125)
        return {"Test": ["NONE"]}
    if not any(settings):
        return None
    for name, value in (("interval", flags.interval), ("timeout", flags.timeout),
                        ("retries", flags.retries), ("start-period", flags.start_period)):
        if value < 0:
            raise CliError(f"--health-{name} cannot be negative", code=125)
    body: dict[str, Any] = {"Test": ["CMD-SHELL", flags.cmd]} if flags.cmd else {}
    for key, value in (("Interval", flags.interval), ("Timeout", flags.timeout),
                       ("StartPeriod", flags.start_period), ("Retries", flags.retries)):
        if value:
            body[key] = value
    return body


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    """A Go duration flag (pflag's DurationVar): a malformed one is a usage error."""
    if value is None:
        return 0
    ns = go_duration_ns(value)
    if ns is None:
        raise click.UsageError(f'invalid argument "{value}" for "--{param.name.replace("_", "-")}" '
                               f'flag: time: invalid duration "{value}"', ctx)
    return ns


def _retries(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    if value is None:
        return 0
    try:
        return int(value, 10)
    except ValueError:
        raise click.UsageError(f'invalid argument "{value}" for "--health-retries" flag: '
                               f'strconv.ParseInt: parsing "{value}": invalid syntax', ctx) from None


OPTIONS = [
    click.option("--health-cmd", default="", help="Shell command whose exit status says if it is healthy"),
    click.option("--health-interval", callback=_duration,
                 help="Time between two probes (ms|s|m|h, default 30s)"),
    click.option("--health-timeout", callback=_duration,
                 help="Time a probe may take before it counts as failed (default 30s)"),
    click.option("--health-retries", callback=_retries,
                 help="Failures in a row that make it unhealthy (default 3)"),
    click.option("--health-start-period", callback=_duration,
                 help="Time after start in which failures do not count yet (default 0s)"),
    click.option("--no-healthcheck", is_flag=True, help="Run no health check, the image's neither"),
]


def health_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(OPTIONS):
        fn = decorator(fn)
    return fn


def flags_of(params: dict[str, Any]) -> HealthFlags:
    return HealthFlags(cmd=params["health_cmd"], interval=params["health_interval"],
                       timeout=params["health_timeout"], start_period=params["health_start_period"],
                       retries=params["health_retries"], disabled=params["no_healthcheck"])
