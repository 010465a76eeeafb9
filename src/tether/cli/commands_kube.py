"""`tether kube generate|play|down`: containers to Kubernetes YAML and back, through the API.

generate reads what the API says about containers and networks (the inspect JSON Docker gives)
and hands it to the pure mapping in rules/kube_generate.py; play and down (cli/kube_play.py)
create and remove networks, volumes and containers through the same API. Nothing here touches
an engine module, so both work against any daemon that speaks the Engine API. PyYAML is imported
only when one of these commands runs: the CLI's start-up stays as it was.
"""
from __future__ import annotations

import json
import sys

import click

from tether.cli.client import CliError, DaemonError
from tether.cli.common import MULTI, DockerGroup, command, current_app, err

COMPOSE_PROJECT = "com.docker.compose.project"


@command("generate", usage="[OPTIONS] CONTAINER|POD [CONTAINER|POD...]")
@click.option("--type", "kind", type=click.Choice(["pod", "deployment"]), default="pod",
              show_default=True, help="The kind of workload each container becomes")
@click.option("-s", "--service", is_flag=True,
              help="Also a NodePort Service for ports published on a random host port")
@click.option("--project", default=None,
              help="Every container of this docker-compose project")
@click.option("-f", "--filename", default=None, help="Write the YAML to this file, not stdout")
@click.argument("names", **MULTI)
def generate(kind: str, service: bool, project: str | None, filename: str | None,
             names: tuple[str, ...]) -> None:
    """Print Kubernetes YAML for containers (or the pods `kube play` made): a Pod or Deployment
    each, one for containers sharing namespaces (container: modes), a Service per link alias
    and network alias, a PersistentVolumeClaim per named volume. What Kubernetes cannot express
    is listed on stderr."""
    import yaml

    from tether.rules.kube_generate import GenerateError
    from tether.rules.kube_generate import generate as to_kube
    from tether.rules.kube_generate import with_comments

    client = current_app().client
    names = names + _project_containers(project) if project else names
    if not names:
        raise CliError("kube generate: name containers, or a project with --project")
    containers = [c for n in names for c in _containers(n)]
    linked = _referred(containers)
    networks = {}
    for c in containers:
        for net in c["NetworkSettings"].get("Networks") or {}:
            networks.setdefault(net, client.json("GET", f"/networks/{net}"))
    volumes = {}
    for c in containers:
        for mount in c.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                volumes.setdefault(mount["Name"], client.json("GET", f"/volumes/{mount['Name']}"))
    try:
        result = to_kube(containers, networks, linked, kind, service, volumes)
    except GenerateError as exc:
        raise CliError(f"kube generate: {exc}") from exc
    for warning in result.warnings:
        err(f"WARNING: {warning}")
    text = with_comments(yaml.safe_dump_all(result.documents, sort_keys=False,
                                            default_flow_style=False))
    if filename:
        with open(filename, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def _containers(name: str) -> list[dict]:
    """The inspect JSON of a container, or of the containers of a pod `kube play` made (found
    by its label, oldest first: the first one holds the pod's namespaces)."""
    from tether.rules.kube_play import LABEL_POD

    client = current_app().client
    try:
        return [client.json("GET", f"/containers/{name}/json")]
    except DaemonError as exc:
        if exc.status != 404:
            raise
        query = {"all": 1, "filters": json.dumps({"label": [f"{LABEL_POD}={name}"]})}
        members = client.json("GET", "/containers/json", query)
        if not members:
            raise
    return [client.json("GET", f"/containers/{m['Id']}/json") for m in reversed(members)]


def _referred(containers: list[dict]) -> dict[str, dict]:
    """The inspect JSON of the containers that `containers` refer to and do not include, by
    name: link targets (their ports and env make the link's Service and variables) and the
    donors of `container:` namespace modes (named in the error when left out). One that is
    gone is left out: the mapping reports it."""
    from tether.rules.container_mode import donor
    from tether.rules.kube_pods import MODES

    given = {c["Name"].lstrip("/") for c in containers} | {c["Id"] for c in containers}
    refs = [link.partition(":")[0].lstrip("/") for c in containers
            for link in c["HostConfig"].get("Links") or []]
    refs += [donor(c["HostConfig"].get(key)) for c in containers for key, _, _ in MODES]
    found = {}
    for ref in dict.fromkeys(r for r in refs if r and r not in given):
        try:
            c = current_app().client.json("GET", f"/containers/{ref}/json")
        except DaemonError as exc:
            if exc.status != 404:
                raise
            continue
        if c["Id"] not in given:
            found[c["Name"].lstrip("/")] = c
    return found


def _project_containers(project: str) -> tuple[str, ...]:
    query = {"all": 1, "filters": json.dumps({"label": [f"{COMPOSE_PROJECT}={project}"]})}
    items = current_app().client.json("GET", "/containers/json", query)
    if not items:
        raise CliError(f"kube generate: no container of project {project!r}")
    return tuple(sorted(i["Names"][0].lstrip("/") for i in items))


@command("play", usage="[OPTIONS] FILE")
@click.option("--replace", is_flag=True,
              help="First remove the containers an earlier play of this file made "
                   "(volumes and network stay)")
@click.option("--network", default="tether-kube", show_default=True,
              help="The user network the pods join; Service names are DNS aliases on it")
@click.argument("filename", metavar="FILE")
def play(replace: bool, network: str, filename: str) -> None:
    """Run the Pods, Deployments, Services, PersistentVolumeClaims, ConfigMaps and Secrets of a
    Kubernetes YAML file ("-": stdin) as containers, volumes and a network. Fields tether cannot
    apply are refused, naming the field."""
    from tether.cli import kube_play

    p = kube_play.load_plan(filename, network)
    client = current_app().client
    if replace:
        kube_play.down(client, p, containers_only=True)
    kube_play.play(client, p)


@command("down", usage="[OPTIONS] FILE")
@click.option("--network", default="tether-kube", show_default=True,
              help="The user network play used")
@click.argument("filename", metavar="FILE")
def down(network: str, filename: str) -> None:
    """Remove what `kube play FILE` made: its containers, volumes and (when empty) network."""
    from tether.cli import kube_play

    kube_play.down(current_app().client, kube_play.load_plan(filename, network))


@click.group("kube", cls=DockerGroup)
def kube() -> None:
    """Containers to Kubernetes YAML (generate) and Kubernetes YAML run on tether (play, down)."""


for _cmd in (generate, play, down):
    kube.add_command(_cmd)


def register(group: click.Group) -> None:
    group.add_command(kube)
