"""Volume commands: `volume create/ls/inspect/rm/prune`, with docker's flags and output."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from tether.cli import formatting
from tether.cli.client import CliError, parse_version
from tether.cli.common import (MULTI, TEMPLATE_HELP, DockerGroup, command, current_app, filters_query,
                               for_each, out, render_format)
from tether.cli.runopts import split_map

_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
            "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
            "Group": "GROUP", "Status": "STATUS"}
_DEFAULT_TABLE = "table {{.Driver}}\t{{.Name}}"

ANONYMOUS_WARNING = "WARNING! This will remove anonymous local volumes not used by at least one container."
ALL_WARNING = "WARNING! This will remove all local volumes not used by at least one container."


def volume_context(item: dict[str, Any]) -> dict[str, Any]:
    """The fields `volume ls --format` templates see (docker's volumeContext); usage and cluster
    fields are "N/A" as the list endpoint has no UsageData and tether no cluster volumes."""
    labels = item.get("Labels") or {}
    # in key order, as `{{json .}}` prints the Go map docker renders
    return {"Availability": "N/A", "Driver": item["Driver"], "Group": "N/A",
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())), "Links": "N/A",
            "Mountpoint": item.get("Mountpoint", ""), "Name": item["Name"],
            "Scope": item.get("Scope", ""), "Size": "N/A", "Status": "N/A"}


def template_view(volume: dict[str, Any], fmt: str) -> dict[str, Any]:
    """What `volume inspect -f` templates see. Labels and Options are Go maps, and a nil one
    prints as `map[]` (not `<nil>`) but encodes as JSON `null`; the template engine only knows
    JSON values, so nil maps become empty ones unless the template encodes JSON."""
    if "json" in fmt:
        return volume
    return {**volume, "Labels": volume.get("Labels") or {}, "Options": volume.get("Options") or {}}


def prune_warning(api_version: str, all_: bool) -> str:
    """Since API 1.42 a plain prune spares named volumes; before, it removed every unused one."""
    if all_ or parse_version(api_version) < (1, 42):
        return ALL_WARNING
    return ANONYMOUS_WARNING


def prune_report(report: dict[str, Any]) -> str:
    """The `volume prune` output: the removed names (if any), then the space reclaimed."""
    from tether.rules.units import human_size

    deleted = report.get("VolumesDeleted") or []
    text = ("Deleted Volumes:\n" + "".join(f"{n}\n" for n in deleted) + "\n") if deleted else ""
    reclaimed = report.get("SpaceReclaimed", 0) if deleted else 0
    return text + f"Total reclaimed space: {human_size(reclaimed, 4)}\n"


def _usage_error(message: str, code: int) -> CliError:
    """docker's usage errors: the message, the usage line, the pointer to --help."""
    ctx = click.get_current_context()
    path = ctx.command_path
    usage = getattr(ctx.command, "docker_usage", "[OPTIONS]")
    return CliError(f"{message}\n\nUsage:  {path} {usage}\n\n"
                    f"Run '{path} --help' for more information", code)


def _too_many(limit: int) -> CliError:
    path = click.get_current_context().command_path
    counted = "requires at most 1 argument" if limit else "accepts no arguments"
    return _usage_error(f"tether: '{path}' {counted}", 1)


def _filter_query(values: tuple[str, ...], flag: str) -> str | None:
    """`--filter` values as the API's JSON, refusing one without `=` as docker's flag parser."""
    for value in values:
        if "=" not in value:
            raise _usage_error(f'invalid argument "{value}" for "{flag}" flag: bad format of '
                               "filter (expected name=value)", 125)
    return filters_query(values)


@command("create", usage="[OPTIONS] [VOLUME]")
@click.option("-d", "--driver", default="local", help="Volume driver: tether has 'local' only")
@click.option("--label", multiple=True, help="KEY=VALUE label for the volume")
@click.option("-o", "--opt", multiple=True,
              help="KEY=VALUE for the local driver: type, device, o (mount options)")
@click.option("--name", "name_flag", default=None, hidden=True,
              help="The volume's name, as the VOLUME argument gives it")
@click.argument("names", **MULTI)
def create(driver: str, label: tuple[str, ...], opt: tuple[str, ...], name_flag: str | None,
           names: tuple[str, ...]) -> None:
    """Create a volume and print its name (random if not given)."""
    if len(names) > 1:
        raise _too_many(1)
    if names and name_flag:
        raise CliError("conflicting options: cannot specify a volume-name through both --name "
                       "and as a positional arg")
    body: dict[str, Any] = {"Name": names[0] if names else name_flag or "", "Driver": driver}
    if opt:
        body["DriverOpts"] = split_map(opt)
    if label:
        body["Labels"] = split_map(label)
    out(current_app().client.json("POST", "/volumes/create", body=body)["Name"])


@command("ls", usage="[OPTIONS]")
@click.option("-q", "--quiet", is_flag=True, help="Print volume names only")
@click.option("-f", "--filter", "filters", multiple=True,
              help="KEY=VALUE to select by: dangling, driver, label, name")
@click.option("--format", "fmt", default=None, help=f"{TEMPLATE_HELP}, or 'json'")
@click.argument("extra", **MULTI)
def ls(quiet: bool, filters: tuple[str, ...], fmt: str | None, extra: tuple[str, ...]) -> None:
    """Show the volumes with their driver."""
    if extra:
        raise _too_many(0)
    reply = current_app().client.json("GET", "/volumes", {"filters": _filter_query(filters, "-f, --filter")})
    items = sorted(reply.get("Volumes") or [], key=lambda v: formatting.natural_key(v["Name"]))
    if fmt == "json":
        fmt = "{{json .}}"
    if fmt in (None, "", "table"):
        fmt = "{{.Name}}" if quiet else _DEFAULT_TABLE
    sys.stdout.write(render_format(fmt, [volume_context(i) for i in items], _HEADERS))


@command("inspect", usage="[OPTIONS] VOLUME [VOLUME...]", min_args=1)
@click.option("-f", "--format", "fmt", default=None, help="Go template run on each volume, or 'json'")
@click.argument("names", **MULTI)
def inspect(fmt: str | None, names: tuple[str, ...]) -> None:
    """Print volumes' full JSON records."""
    from tether.cli.inspect_output import print_inspected

    client = current_app().client
    print_inspected(names, lambda name: client.json("GET", f"/volumes/{name}"), fmt,
                    lambda volume: template_view(volume, fmt or ""))


@command("rm", usage="[OPTIONS] VOLUME [VOLUME...]", min_args=1)
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist")
@click.argument("names", **MULTI)
def rm(force: bool, names: tuple[str, ...]) -> None:
    """Delete volumes; refused for one a container still refers to."""
    client = current_app().client
    for_each(names, lambda name: client.request("DELETE", f"/volumes/{name}",
                                                {"force": 1 if force else None}))


@command("prune", usage="[OPTIONS]")
@click.option("-a", "--all", "all_", is_flag=True, help="Named volumes too, not only anonymous ones")
@click.option("--filter", "filters", multiple=True,
              help="KEY=VALUE: prune only matching volumes, e.g. label=tmp")
@click.option("-f", "--force", is_flag=True, help="Skip the are-you-sure question")
@click.argument("extra", **MULTI)
def prune(all_: bool, filters: tuple[str, ...], force: bool, extra: tuple[str, ...]) -> None:
    """Delete unused anonymous volumes (named ones too with -a)."""
    if extra:
        raise _too_many(0)
    encoded = _filter_query(filters, "--filter")
    client = current_app().client
    chosen: dict[str, Any] = json.loads(encoded) if encoded else {}
    if all_ and parse_version(client.version) >= (1, 42):
        if "all" in chosen:
            raise CliError("conflicting options: cannot specify both --all and --filter all=1")
        chosen["all"] = {"true": True}
    elif all_:
        raise CliError(f'"--all" requires API version 1.42, but the tether daemon API version '
                       f"is {client.version}")
    if not force and not confirm(prune_warning(client.version, all_)):
        return
    report = client.json("POST", "/volumes/prune",
                         {"filters": json.dumps(chosen) if chosen else None})
    sys.stdout.write(prune_report(report))


def confirm(warning: str) -> bool:
    """docker's PromptForConfirmation: the question, then `y` or `Y` on stdin says yes."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    return answer in ("y", "Y")


@click.group("volume", cls=DockerGroup)
def volume() -> None:
    """Create, list, inspect and remove volumes."""


for _cmd in (create, ls, inspect, rm, prune):
    volume.add_command(_cmd)
volume.add_command(ls, "list")
volume.add_command(rm, "remove")


def register(group: click.Group) -> None:
    group.add_command(volume)
