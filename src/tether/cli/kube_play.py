"""`kube play` and `kube down` over HTTP: the plan of rules/kube_play.py carried out by the API.

Imported only when those commands run (it needs PyYAML). Everything play makes carries the
label `io.tether.kube`, and down removes only what carries it, so a container of the same name
made by hand is never taken for one of ours.
"""
from __future__ import annotations

import sys
from typing import Any

from tether.cli.client import CliError, Client, DaemonError
from tether.cli.common import err, out
from tether.rules.kube_play import (LABEL_MADE, FilesVolume, Plan, PlayError, plan, selects,
                                    service_variables)

FILL_TARGET = "/tether-kube-files"


def load_plan(filename: str, network: str) -> Plan:
    import yaml

    try:
        if filename == "-":
            documents = list(yaml.safe_load_all(sys.stdin))
        else:
            with open(filename, encoding="utf-8") as f:
                documents = list(yaml.safe_load_all(f))
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise CliError(f"kube: open {filename}: {reason}") from exc
    except yaml.YAMLError as exc:
        raise CliError(f"kube: {filename} is no valid YAML: {exc}") from exc
    try:
        return plan(documents, network)
    except PlayError as exc:
        raise CliError(f"kube play: {exc}") from exc


def play(client: Client, p: Plan) -> None:
    for name in p.container_names():
        if _inspect(client, f"/containers/{name}/json") is not None:
            raise CliError(f"kube play: container {name!r} exists already (--replace removes it "
                           "and what else the file made first)")
    images = dict.fromkeys(c.body["Image"] for pod in p.pods for c in pod.containers)
    for image in images:  # checked before anything is made: play pulls nothing
        if _inspect(client, f"/images/{image}/json") is None:
            raise CliError(f"kube play: no image {image!r} here: pull or build it first")
    for note in p.notes:
        err(f"WARNING: {note}")
    if _inspect(client, f"/networks/{p.network}") is None:
        client.json("POST", "/networks/create",
                    body={"Name": p.network, "Labels": {LABEL_MADE: "1"}})
    for volume in p.volume_names():
        client.json("POST", "/volumes/create", body={"Name": volume, "Labels": {LABEL_MADE: "1"}})
    for files in p.files_volumes:
        _fill(client, files)
    addresses: dict[str, str] = {}
    early: dict[str, list[str]] = {}
    for pod in p.pods:
        extra = service_variables(p.services, addresses) if pod.service_links else {}
        if pod.service_links:
            for service in p.services:
                if service["metadata"]["name"] not in addresses:
                    early.setdefault(service["metadata"]["name"], []).append(pod.name)
        for container in pod.containers:
            body = dict(container.body)
            own = {entry.partition("=")[0] for entry in body["Env"]}
            body["Env"] = [f"{k}={v}" for k, v in extra.items() if k not in own] + body["Env"]
            created = client.json("POST", "/containers/create", {"name": container.name}, body)
            client.request("POST", f"/containers/{created['Id']}/start")
            out(container.name)
        first = client.json("GET", f"/containers/{pod.containers[0].name}/json")
        endpoint = (first["NetworkSettings"].get("Networks") or {}).get(p.network) or {}
        address = endpoint.get("IPAddress")
        for service in p.services:
            if address and selects(service, pod.labels):
                addresses.setdefault(service["metadata"]["name"], address)
    for service, pods in early.items():
        err(f"WARNING: Service {service}: pod(s) {', '.join(pods)} have none of its variables: "
            "on tether they carry the address of the pod behind the Service, which had none yet "
            "(a cluster gives every later pod the Service's own address)")


def down(client: Client, p: Plan, containers_only: bool = False) -> None:
    """Remove the file's containers, then its volumes and its network when nothing else is on
    it; `containers_only` (--replace) keeps the claims' volumes and the network (ConfigMap and
    Secret volumes go: play fills them anew)."""
    for name in reversed(p.container_names()):
        found = _inspect(client, f"/containers/{name}/json")
        if found is None:
            continue
        if LABEL_MADE not in (found["Config"].get("Labels") or {}):
            err(f"WARNING: container {name} was not made by kube play: left alone")
            continue
        client.request("DELETE", f"/containers/{name}", {"force": 1, "v": 1})
        out(name)
    volumes = [v.name for v in p.files_volumes] if containers_only else p.volume_names()
    for volume in volumes:
        found = _inspect(client, f"/volumes/{volume}")
        if found is not None and LABEL_MADE in (found.get("Labels") or {}):
            client.request("DELETE", f"/volumes/{volume}")
            out(volume)
    if containers_only:
        return
    network = _inspect(client, f"/networks/{p.network}")
    if network is not None and LABEL_MADE in (network.get("Labels") or {}) \
            and not network.get("Containers"):
        client.request("DELETE", f"/networks/{p.network}")
        out(p.network)


def _fill(client: Client, volume: FilesVolume) -> None:
    """Write a ConfigMap's or Secret's files into its volume through a container that mounts it
    and never starts (the pod mounts the volume read-only, where no archive may be written)."""
    import io
    import tarfile

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path, content in sorted(volume.files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    body = {"Image": volume.image, "Labels": {LABEL_MADE: "1"},
            "HostConfig": {"Mounts": [{"Type": "volume", "Source": volume.name,
                                       "Target": FILL_TARGET}]}}
    helper = client.json("POST", "/containers/create", None, body)["Id"]
    try:
        client.request("PUT", f"/containers/{helper}/archive", {"path": FILL_TARGET},
                       data.getvalue(), {"Content-Type": "application/x-tar"})
    finally:
        client.request("DELETE", f"/containers/{helper}", {"force": 1})


def _inspect(client: Client, path: str) -> Any:
    try:
        return client.json("GET", path)
    except DaemonError as exc:
        if exc.status == 404:
            return None
        raise
