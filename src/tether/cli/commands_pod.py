"""`tether pod ls/inspect/rm`: the pods `kube play` made, found by their label.

(rules.kube_play, where the label is named, is imported only when a pod command runs: it costs
milliseconds on every start of the CLI otherwise.)

A pod on tether is containers plus a label (`io.tether.kube.pod=<name>`), not an object of the
engine: these commands list, show and remove containers grouped by that label, over the API.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from tether.cli.client import CliError
from tether.cli.common import MULTI, DockerGroup, command, current_app, for_each, out, render_format
_HEADERS = {"Name": "NAME", "Status": "STATUS", "Containers": "# OF CONTAINERS"}


def group_pods(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """GET /containers/json items grouped by pod: name -> {Name, Status, Labels, Containers}.
    Status is Running when all its containers run, Exited when none does, else Degraded."""
    from tether.rules.kube_play import LABEL_POD

    pods: dict[str, dict[str, Any]] = {}
    for item in sorted(items, key=lambda i: i["Names"][0]):
        labels = item.get("Labels") or {}
        name = labels.get(LABEL_POD)
        if name is None:
            continue
        pod = pods.setdefault(name, {"Name": name, "Labels": {
            k: v for k, v in sorted(labels.items()) if not k.startswith("io.tether.kube")},
            "Containers": []})
        pod["Containers"].append({"Id": item["Id"], "Name": item["Names"][0].lstrip("/"),
                                  "State": item["State"]})
    for pod in pods.values():
        running = [c["State"] == "running" for c in pod["Containers"]]
        pod["Status"] = "Running" if all(running) else "Degraded" if any(running) else "Exited"
    return pods


def _pods() -> dict[str, dict[str, Any]]:
    from tether.rules.kube_play import LABEL_POD

    query = {"all": 1, "filters": json.dumps({"label": [LABEL_POD]})}
    return group_pods(current_app().client.json("GET", "/containers/json", query))


@command("ls", usage="[OPTIONS]")
@click.option("-q", "--quiet", is_flag=True, help="Print pod names only")
@click.option("--format", "fmt", default=None,
              help="Go template run on each pod (.Name, .Status, .Containers)")
def ls(quiet: bool, fmt: str | None) -> None:
    """List the pods `kube play` made."""
    if fmt in (None, "", "table"):
        fmt = "{{.Name}}" if quiet else "table {{.Name}}\t{{.Status}}\t{{.Containers}}"
    rows = [{**p, "Containers": str(len(p["Containers"]))} for p in _pods().values()]
    sys.stdout.write(render_format(fmt, rows, _HEADERS))


@command("inspect", usage="POD [POD...]", min_args=1)
@click.argument("names", **MULTI)
def inspect(names: tuple[str, ...]) -> None:
    """Print pods as JSON: their labels and containers."""
    pods = _pods()
    missing = [n for n in names if n not in pods]
    found = [pods[n] for n in names if n in pods]
    if found:
        out(json.dumps(found, indent=4))
    if missing:
        raise CliError("\n".join(f"Error: No such pod: {n}" for n in missing))


@command("rm", usage="[OPTIONS] POD [POD...]", min_args=1)
@click.option("-f", "--force", is_flag=True, help="Remove running pods too")
@click.argument("names", **MULTI)
def rm(force: bool, names: tuple[str, ...]) -> None:
    """Remove pods: their containers and anonymous volumes."""
    pods = _pods()
    client = current_app().client

    def remove(name: str) -> None:
        if name not in pods:
            raise CliError(f"Error: No such pod: {name}")
        for container in pods[name]["Containers"]:
            client.request("DELETE", f"/containers/{container['Id']}",
                           {"force": 1 if force else None, "v": 1})

    for_each(names, remove)


@click.group("pod", cls=DockerGroup)
def pod() -> None:
    """List, inspect and remove the pods `kube play` made (containers sharing a pod label)."""


for _cmd in (ls, inspect, rm):
    pod.add_command(_cmd)
pod.add_command(ls, "list")


def register(group: click.Group) -> None:
    group.add_command(pod)
