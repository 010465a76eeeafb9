"""System commands: version and info, laid out as docker's templates lay them out."""
from __future__ import annotations

import platform
import sys
from typing import Any

import click

import tether
from tether.cli import formatting
from tether.cli.client import MAX_API_VERSION, CliError
from tether.cli.common import TEMPLATE_HELP, DockerGroup, command, current_app, render_format
from tether.rules.units import bytes_size

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _section(rows: list[tuple[str, Any]], indent: str, minwidth: int) -> str:
    return formatting.tabwrite([[f"{indent}{k}:", str(v)] for k, v in rows], minwidth, 1)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def version_text(server: dict[str, Any], negotiated: str) -> str:
    """`docker version`'s layout (a 20-column tabwriter) with tether's client facts."""
    maximum = f"{MAX_API_VERSION[0]}.{MAX_API_VERSION[1]}"
    api = negotiated if negotiated == maximum else f"{negotiated} (downgraded from {maximum})"
    machine = platform.machine()
    text = "Client:\n" + _section([
        ("Version", tether.__version__), ("API version", api),
        ("Python version", platform.python_version()),
        ("OS/Arch", f"{sys.platform}/{_ARCH.get(machine, machine)}"), ("Context", "default"),
    ], " ", 20)
    text += "\nServer:\n Engine:\n" + _section([
        ("Version", server.get("Version", "")),
        ("API version", f"{server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})"),
        ("Go version", server.get("GoVersion", "")), ("Git commit", server.get("GitCommit", "")),
        ("Built", server.get("BuildTime", "")),
        ("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"),
        ("Experimental", _bool(server.get("Experimental"))),
    ], "  ", 20)
    for component in server.get("Components") or []:
        if component.get("Name") == "Engine":
            continue
        details = component.get("Details") or {}
        text += f" {component.get('Name')}:\n" + _section(
            [("Version", component.get("Version", ""))] + sorted(details.items()), "  ", 20)
    return text


@command("version", usage="[OPTIONS]")
def version() -> None:
    """Print the versions of this client and of tetherd."""
    client = current_app().client
    server = client.json("GET", "/version")
    sys.stdout.write(version_text(server, client.version))


def info_text(info: dict[str, Any]) -> str:
    """A subset of `docker info`'s layout."""
    text = "Client:\n" + _section([("Version", tether.__version__), ("Context", "default"),
                                   ("Debug Mode", "false")], " ", 0)
    lines = [
        f" Containers: {info.get('Containers', 0)}",
        f"  Running: {info.get('ContainersRunning', 0)}",
        f"  Paused: {info.get('ContainersPaused', 0)}",
        f"  Stopped: {info.get('ContainersStopped', 0)}",
        f" Images: {info.get('Images', 0)}",
        f" Server Version: {info.get('ServerVersion', '')}",
        f" Storage Driver: {info.get('Driver', '')}",
        f" Logging Driver: {info.get('LoggingDriver', '')}",
        f" Cgroup Driver: {info.get('CgroupDriver', '')}",
        f" Cgroup Version: {info.get('CgroupVersion', '')}",
        f" Swarm: {(info.get('Swarm') or {}).get('LocalNodeState', 'inactive')}",
        f" Runtimes: {' '.join(sorted(info.get('Runtimes') or {}))}",
        f" Default Runtime: {info.get('DefaultRuntime', '')}",
        f" Kernel Version: {info.get('KernelVersion', '')}",
        f" Operating System: {info.get('OperatingSystem', '')}",
        f" OSType: {info.get('OSType', '')}",
        f" Architecture: {info.get('Architecture', '')}",
        f" CPUs: {info.get('NCPU', 0)}",
        f" Total Memory: {bytes_size(info.get('MemTotal', 0))}",
        f" Name: {info.get('Name', '')}",
        f" ID: {info.get('ID', '')}",
        f" Docker Root Dir: {info.get('DockerRootDir', '')}",
        f" Debug Mode: {_bool(info.get('Debug'))}",
        f" Experimental: {_bool(info.get('ExperimentalBuild'))}",
        f" Live Restore Enabled: {_bool(info.get('LiveRestoreEnabled'))}",
    ]
    return text + "\nServer:\n" + "".join(line + "\n" for line in lines)


@command("info", usage="[OPTIONS]")
def info() -> None:
    """Describe tetherd and its host: counts, drivers, kernel, paths."""
    sys.stdout.write(info_text(current_app().client.json("GET", "/info")))


@command("df", usage="[OPTIONS]")
@click.option("-v", "--verbose", is_flag=True, help="One row per image, container, volume and cache entry")
@click.option("--format", "fmt", default=None, help=f"{TEMPLATE_HELP}, or 'json'")
def df(verbose: bool, fmt: str | None) -> None:
    """Show the space images, containers, volumes and build cache take."""
    import time

    from tether.cli import dfformat

    usage = current_app().client.json("GET", "/system/df")
    if verbose and fmt == "json":
        sys.stdout.write(dfformat.verbose_json(usage, time.time()))
    elif verbose:
        if fmt not in (None, "", "table"):  # docker runs such a template on its whole context
            raise CliError("tether: only --format json or table go with --verbose", 125)
        sys.stdout.write(dfformat.verbose_text(usage, time.time()))
    elif fmt == "json":
        sys.stdout.write(dfformat.summary_json(usage))
    else:
        fmt = fmt if fmt and fmt != "table" else ("table {{.Type}}\t{{.TotalCount}}\t{{.Active}}"
                                                  "\t{{.Size}}\t{{.Reclaimable}}")
        sys.stdout.write(render_format(fmt, dfformat.summary_contexts(usage),
                                       dfformat.SUMMARY_HEADERS))


@click.group("system", cls=DockerGroup)
def system() -> None:
    """tetherd-wide information and disk usage."""


system.add_command(df)
system.add_command(info)


def register(group: click.Group) -> None:
    group.add_command(version)
    group.add_command(info)
    group.add_command(system)
