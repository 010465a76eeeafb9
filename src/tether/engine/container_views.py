"""What the API shows of containers: inspect, the list items (with sizes for `ps -s` and
`system df`) and `GET /containers/json` with Docker's filters. Reads only."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from tether.engine import diskusage, shared_ns
from tether.engine.link_service import LinkService
from tether.engine.netattach import NetworkAttachment
from tether.engine.paths import Paths
from tether.engine.records import Container
from tether.engine.registry import ContainerRegistry
from tether.rules import health, ps_filters
from tether.rules.filters import label_matches, pattern_matches
from tether.rules.errors import ApiError, NotFound
from tether.image.store import ImageStore


class ContainerViews:
    """Inspect, list and the list's filters."""

    def __init__(self, registry: ContainerRegistry, links: LinkService,
                 attachment: NetworkAttachment, images: ImageStore, paths: Paths) -> None:
        self.registry = registry
        self.links = links
        self.attachment = attachment
        self.images = images
        self.paths = paths
        self._failed_start_ports: dict[str, list[dict[str, Any]]] = {}

    def keep_ports_of_failed_start(self, c: Container) -> None:
        """dockerd 20.10's list keeps showing the ports a start published when that start then
        failed (its list view was saved before the ports were released), until the container's
        next start or removal: `docker run -d -P img missing-binary` leaves a Created container
        that `ps -a` lists with its ports, while inspect shows none. Kept in memory only, as
        dockerd's view is (a restarted daemon lists no ports)."""
        ports = self.attachment.published_ports(c)
        if ports:
            self._failed_start_ports[c.id] = ports

    def forget_ports_of_failed_start(self, cid: str) -> None:
        self._failed_start_ports.pop(cid, None)

    def inspect(self, c: Container) -> dict[str, Any]:
        """Inspect with `HostConfig.Links` rebuilt from the link graph (`/db:/web/db`)."""
        paths = self.paths.views(c.id)
        owner = shared_ns.files_owner(c)  # a network member shows its donor's files, as dockerd
        for kind in ("resolv", "hostname", "hosts"):
            paths[kind] = self.paths.views(owner)[kind]
        view = c.inspect(paths, self.attachment.settings(c))
        view["HostConfig"]["Links"] = self.links.inspect_links(c)
        return view

    def summary(self, c: Container) -> dict[str, Any]:
        """A list item; a linked container's Names include its link names (`/web/db`)."""
        ports = self.attachment.published_ports(c) or self._failed_start_ports.get(c.id, [])
        item = c.summary(self.attachment.networks(c), ports)
        item["Names"] = sorted([c.name, *self.links.names_of(c)])
        return item

    async def sized_summaries(self, items: list[Container]) -> list[dict[str, Any]]:
        """List items with SizeRw and SizeRootFs (`ps -s`, `system df`); the upper dirs are
        walked in a thread, the records read here on the loop."""
        summaries = [self.summary(c) for c in items]
        image_sizes = [self._image_size(c.image_id) for c in items]
        uppers: list[Path] = [self.paths.upper(c.id) for c in items]
        sizes = await asyncio.to_thread(lambda: [diskusage.directory_size(u) for u in uppers])
        return [diskusage.with_sizes(item, rw, image) for item, rw, image
                in zip(summaries, sizes, image_sizes, strict=True)]

    def _image_size(self, image_id: str) -> int:
        try:
            return self.images.resolve(image_id).size
        except NotFound:  # a force-removed image: its layers stay, its size is gone
            return 0

    def list(self, all_: bool, limit: int, filters: dict[str, list[str]]) -> list[Container]:
        """`GET /containers/json`: newest first, Docker's filters, checked in dockerd's order
        (its first error is the one a client sees). `isolation` is accepted and matches every
        container, as dockerd's list does on Linux (no container has another isolation)."""
        ps_filters.check_keys(filters)
        exit_codes = ps_filters.exit_codes(filters.get("exited") or [])
        all_ = ps_filters.wants_stopped(filters.get("status") or []) or all_
        tasks = ps_filters.wants_tasks(filters.get("is-task") or [])
        health.check_filter(filters.get("health") or [])
        items = sorted(self.registry.all(), key=lambda c: c.created, reverse=True)
        before = since = candidates = None
        if any(filters.get(k) for k in ("before", "since", "id", "name")):  # `ps` is hot
            names = {c.id: [c.name, *self.links.names_of(c)] for c in items}
            # every value is looked up (a bad one is dockerd's error), the last one counts
            befores = [ps_filters.resolve_exact(v, names) for v in filters.get("before") or []]
            sinces = [ps_filters.resolve_exact(v, names) for v in filters.get("since") or []]
            before, since = (befores or [None])[-1], (sinces or [None])[-1]
            candidates = ps_filters.id_name_candidates(names, filters.get("id") or [],
                                                       filters.get("name") or [])
        ancestors = self._ancestor_images(filters.get("ancestor") or [])
        publish = ps_filters.port_set("publish", filters.get("publish") or [])
        expose = ps_filters.port_set("expose", filters.get("expose") or [])
        if tasks:  # tether runs no swarm tasks
            return []
        if candidates is not None:  # the list dockerd walks, and cuts, with id or name
            items = [c for c in items if c.id in candidates]
        kept = set(ps_filters.cut_before_since([c.id for c in items], before, since))
        items = [c for c in items if c.id in kept]
        if not all_ and limit <= 0:
            items = [c for c in items if c.state.status in ("running", "restarting")]
        items = [c for c in items if self._matches(c, filters, exit_codes)
                 and (ancestors is None or c.image_id in ancestors)]
        if publish or expose:  # on the list's own Ports, as dockerd matches them
            items = [c for c in items
                     if ps_filters.ports_match(self.summary(c)["Ports"], publish, expose)]
        return items[:limit] if limit > 0 else items

    def _matches(self, c: Container, filters: dict[str, list[str]], exit_codes: list[int]) -> bool:
        def any_of(key: str, test: Callable[[str], bool]) -> bool:
            values = filters.get(key)
            return not values or any(test(v) for v in values)

        return (any_of("id", lambda v: pattern_matches(v, c.id))
                and any_of("name", lambda v: pattern_matches(v, c.name)
                           or pattern_matches(v, c.name.removeprefix("/")))
                # the list's State: a paused container is `paused`, not `running`
                and any_of("status", lambda v: ("paused" if c.state.paused
                                                else c.state.status) == v)
                # every label filter must hold, as in Docker (compose asks project AND service)
                and all(label_matches(c.config.labels or {}, v)
                        for v in filters.get("label") or [])
                and any_of("health", lambda v: health.filter_value(c.state.health) == v)
                and any_of("network", lambda v: _on_network(v, self.attachment.networks(c)))
                # dockerd: not running (a paused container's status is running), started once
                and (not exit_codes or (not c.state.running and c.has_been_started
                                        and c.state.exit_code in exit_codes))
                and any_of("volume", lambda v: any(v in (mp.name or mp.source, mp.destination)
                                                   for mp in c.mount_points)))

    def _ancestor_images(self, refs: list[str]) -> set[str] | None:
        """The images whose containers the `ancestor` filter keeps (None without it): the named
        images that exist, with their descendants; an unknown name adds nothing, as dockerd."""
        if not refs:
            return None
        roots = []
        for ref in refs:
            try:
                roots.append(self.images.resolve(ref).id)
            except ApiError:  # unknown or not a reference at all: nothing, as dockerd
                continue
        return ps_filters.with_descendants(
            roots, lambda image_id: [child.id for child in self.images.children(image_id)])


def _on_network(value: str, networks: dict[str, Any]) -> bool:
    """The `network` filter: a network's name exactly, or a prefix of its ID (dockerd's)."""
    return value in networks or any((entry or {}).get("NetworkID", "").startswith(value)
                                    for entry in networks.values())
