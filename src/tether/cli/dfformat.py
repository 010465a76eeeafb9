"""`system df` as the docker CLI prints it (cli/command/formatter/disk_usage.go), from the body
of `GET /system/df`. Totals use go-units' HumanSize (4 significant digits); the per-image and
per-container SIZE columns of `-v` use 3, as docker's image and container formatters do."""
from __future__ import annotations

import json
import time
from typing import Any

from tether.cli.formatting import (ago, container_names, display_ports, ellipsis, go_quote,
                                   short_id, tabwrite)
from tether.rules.units import human_size

SUMMARY_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
                   "Reclaimable": "RECLAIMABLE"}
_ACTIVE_STATES = ("running", "paused", "restarting")


def _total(n: int) -> str:
    return human_size(n, 4)


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{_total(reclaimable)} ({reclaimable * 100 // total}%)"
    return _total(reclaimable)


def _row(kind: str, count: int, active: int, size: int, reclaimable: str) -> dict[str, str]:
    return {"Type": kind, "TotalCount": str(count), "Active": str(active), "Size": _total(size),
            "Reclaimable": reclaimable}


def summary_contexts(df: dict[str, Any]) -> list[dict[str, str]]:
    """The four lines (Images, Containers, Local Volumes, Build Cache) with docker's rules:
    an image in use keeps its unique size; a container that is not active is reclaimable."""
    images = df.get("Images") or []
    layers = df.get("LayersSize", 0)
    used = sum(i["Size"] - i["SharedSize"] for i in images
               if i.get("Containers") and i["Size"] != -1 and i["SharedSize"] != -1)
    containers = df.get("Containers") or []
    active = [any(s in c.get("State", "") for s in _ACTIVE_STATES) for c in containers]
    rw = [c.get("SizeRw", 0) for c in containers]
    idle_rw = sum(size for size, on in zip(rw, active, strict=True) if not on)
    volumes = [v.get("UsageData") or {"Size": -1, "RefCount": 0} for v in df.get("Volumes") or []]
    volume_size = sum(u["Size"] for u in volumes if u["Size"] != -1)
    idle_volumes = sum(u["Size"] for u in volumes if u["Size"] != -1 and u["RefCount"] == 0)
    cache = df.get("BuildCache") or []
    cache_size = sum(b.get("Size", 0) for b in cache if not b.get("Shared"))
    idle_cache = sum(b.get("Size", 0) for b in cache if not b.get("InUse") and not b.get("Shared"))
    return [
        _row("Images", len(images), sum(1 for i in images if i.get("Containers", 0) > 0), layers,
             _reclaimable(layers - used, layers)),
        _row("Containers", len(containers), sum(active), sum(rw), _reclaimable(idle_rw, sum(rw))),
        _row("Local Volumes", len(volumes), sum(1 for u in volumes if u["RefCount"] > 0),
             volume_size, _reclaimable(idle_volumes, volume_size)),
        _row("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")), cache_size,
             _total(idle_cache)),
    ]


def go_json(value: Any) -> str:
    """Go's json.Marshal of a map: keys sorted, no spaces, <, > and & escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def summary_json(df: dict[str, Any]) -> str:
    """`--format json`: one object a line."""
    return "".join(go_json(ctx) + "\n" for ctx in summary_contexts(df))


def _image_row(image: dict[str, Any], now: float) -> list[str]:
    repo, tag = "<none>", "<none>"
    tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
    if tags:  # only the first tag, as docker shows it
        repo, _, tag = tags[0].rpartition(":")
        repo = repo.removeprefix("docker.io/").removeprefix("library/")
    size, shared = image.get("Size", -1), image.get("SharedSize", -1)
    count = image.get("Containers", -1)
    return [repo, tag, short_id(image["Id"]), ago(image.get("Created", now), now),
            human_size(size), "N/A" if shared == -1 else _total(shared),
            "N/A" if -1 in (size, shared) else _total(size - shared),
            "N/A" if count == -1 else str(count)]


def _created_at(seconds: float) -> str:
    """Go's time.Time String() in local time: "2026-11-25 21:48:00 +0000 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(seconds))


def _image_json(image: dict[str, Any], now: float) -> dict[str, Any]:
    repo, tag, _, since, size, shared, unique, count = _image_row(image, now)
    return {"Containers": count, "CreatedAt": _created_at(image.get("Created", 0)),
            "CreatedSince": since, "Digest": "", "ID": image["Id"], "Repository": repo,
            "SharedSize": shared, "Size": size, "Tag": tag, "UniqueSize": unique,
            "VirtualSize": _total(image.get("Size", 0))}


def _container_json(item: dict[str, Any], now: float) -> dict[str, Any]:
    labels = item.get("Labels") or {}
    networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
    image = item.get("Image", "")
    return {"Command": go_quote(item.get("Command", "")),
            "CreatedAt": _created_at(item.get("Created", 0)), "ID": item["Id"], "Image": image,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "LocalVolumes": _container_row(item, now)[3],
            "Mounts": ",".join(m.get("Name") or m.get("Source", "")
                               for m in item.get("Mounts") or []),
            "Names": container_names(item.get("Names"), False), "Networks": ",".join(sorted(networks)),
            "Platform": None, "Ports": display_ports(item.get("Ports")),
            "RunningFor": ago(item.get("Created", now), now), "Size": human_size(item.get("SizeRw", 0)),
            "State": item.get("State", ""), "Status": item.get("Status", "")}


def _volume_json(volume: dict[str, Any]) -> dict[str, Any]:
    name, links, size = _volume_row(volume)
    labels = volume.get("Labels") or {}
    return {"Availability": "N/A", "Driver": volume.get("Driver", ""), "Group": "N/A",
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())), "Links": links,
            "Mountpoint": volume.get("Mountpoint", ""), "Name": name,
            "Scope": volume.get("Scope", ""), "Size": size, "Status": "N/A"}


def verbose_json(df: dict[str, Any], now: float) -> str:
    """`system df -v --format json`: one object (a Go struct: its fields in their order) holding
    every kind's items (Go maps: keys sorted)."""
    images = ",".join(go_json(_image_json(i, now)) for i in df.get("Images") or [])
    containers = ",".join(go_json(_container_json(c, now)) for c in df.get("Containers") or [])
    volumes = ",".join(go_json(_volume_json(v)) for v in df.get("Volumes") or [])
    # no newline after it: docker 28 writes none either
    return (f'{{"Images":[{images}],"Containers":[{containers}],"Volumes":[{volumes}],'
            '"BuildCache":[]}')


def _container_row(item: dict[str, Any], now: float) -> list[str]:
    image = item.get("Image", "")
    volumes = sum(1 for m in item.get("Mounts") or [] if m.get("Type") == "volume")
    return [short_id(item["Id"]), short_id(image) if image.startswith("sha256:") else image,
            go_quote(ellipsis(item.get("Command", ""), 20)), str(volumes),
            human_size(item.get("SizeRw", 0)), ago(item.get("Created", now), now),
            item.get("Status", ""), container_names(item.get("Names"), True)]


def _volume_row(volume: dict[str, Any]) -> list[str]:
    usage = volume.get("UsageData")
    if usage is None:
        return [volume.get("Name", ""), "N/A", "N/A"]
    return [volume.get("Name", ""), str(usage.get("RefCount", 0)), _total(usage.get("Size", 0))]


def verbose_text(df: dict[str, Any], now: float) -> str:
    """`system df -v`: a table per kind, each under its title."""
    images = tabwrite([["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                        "UNIQUE SIZE", "CONTAINERS"]]
                      + [_image_row(i, now) for i in df.get("Images") or []])
    containers = tabwrite([["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE",
                            "CREATED", "STATUS", "NAMES"]]
                          + [_container_row(c, now) for c in df.get("Containers") or []])
    volumes = tabwrite([["VOLUME NAME", "LINKS", "SIZE"]]
                       + [_volume_row(v) for v in df.get("Volumes") or []])
    # tether builds nothing, so the build cache table is its header alone
    cache = tabwrite([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE",
                       "SHARED"]])
    return (f"Images space usage:\n\n{images}\n"
            f"Containers space usage:\n\n{containers}\n"
            f"Local Volumes space usage:\n\n{volumes}\n"
            f"Build cache usage: {_total(df.get('BuilderSize', 0))}\n\n{cache}")
