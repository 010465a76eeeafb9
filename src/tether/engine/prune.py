"""`POST /containers/prune` and `POST /images/prune`: what dockerd's ContainersPrune and
ImagesPrune remove, in their order, with their SpaceReclaimed figures and events.

Containers: every container that is not running (paused ones are), created before `until` and
passing the label filters, removed as `docker rm` removes it; SpaceReclaimed sums their
writable layers' sizes (SizeRw) taken before removal.

Images: without `dangling=false` the candidates are images without children that carry no
tag (an image with only digests counts as untagged); with it, every image except untagged
ones with children (a build's steps, which go with their child). Each candidate is removed as
`docker rmi` without force removes it (its tags one by one, or its ID when it has none); a
conflict (a container uses it, a child keeps it) just spares it. SpaceReclaimed sums the sizes
of the layers deleted on the way (the `Deleted` records that name layers).
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any, Iterable

from tether.engine.containers import ContainerService
from tether.engine.events import EventBus
from tether.image.store import Image, ImageStore, chain_ids
from tether.rules import buildprune, filters as filter_rules, prune
from tether.rules.errors import ApiError
from tether.rules.times import parse_rfc3339

log = logging.getLogger(__name__)


def created_seconds(text: str) -> float:
    """An RFC 3339 time as records and image configs write it (any zone, any fraction)."""
    try:
        return parse_rfc3339(text)
    except ValueError:
        pass
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most microseconds: drop the rest of the fraction, keep the zone
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def publish_removal(events: EventBus, image: Image, records: list[dict[str, str]],
                    known: Iterable[str]) -> None:
    """dockerd's events for an image removal's records: `untag` (actor: the image, with its
    labels) for each tag or digest dropped, `delete` for each image deleted; the records that
    name layers (chain IDs, not in `known`) have none."""
    known = set(known)
    for record in records:
        if "Untagged" in record:
            events.publish("image", "untag", image.id, {**image.labels, "name": image.id})
        elif record.get("Deleted") in known:
            events.publish("image", "delete", record["Deleted"], {"name": record["Deleted"]})


class Pruner:
    def __init__(self, containers: ContainerService, images: ImageStore) -> None:
        self.containers = containers
        self.images = images

    async def prune_containers(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        test = prune.parse(filters, prune.CONTAINER_FILTERS, time.time())
        newest_first = sorted(self.containers.all(), key=lambda c: c.created, reverse=True)
        candidates = [c for c in newest_first if not c.state.running
                      and test.matches(created_seconds(c.created), c.config.labels)]
        sized = await self.containers.views.sized_summaries(candidates)
        deleted: list[str] = []
        reclaimed = 0
        for c, item in zip(candidates, sized, strict=True):
            try:
                await self.containers.remove(c.id)
            except ApiError as exc:  # dockerd logs it and goes on with the others
                log.warning("container prune: %s: %s", c.id, exc.message)
                continue
            deleted.append(c.id)
            reclaimed += max(item.get("SizeRw", 0), 0)
        self.containers.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    async def prune_images(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        filter_rules.check_keys(filters, prune.IMAGE_FILTERS)
        dangling_only = prune.dangling_only(filters)
        test = prune.parse(filters, prune.IMAGE_FILTERS, time.time())
        images = self.images.list()
        layer_sizes = await asyncio.to_thread(self._layer_sizes, images)
        parents = {i.parent for i in images if i.parent}
        known = {i.id: i for i in images}
        deleted: list[dict[str, str]] = []
        for image in images:
            has_children = image.id in parents
            refs = [*image.repo_tags, *image.repo_digests]
            if dangling_only and (has_children or image.repo_tags):
                continue
            if not refs and has_children:
                continue
            if not test.matches(created_seconds(image.config.get("created", "")),
                                image.labels):
                continue
            for ref in refs or [image.id]:
                deleted += await self._delete(image, ref, known)
        reclaimed = sum(layer_sizes.get(r.get("Deleted", ""), 0) for r in deleted)
        self.containers.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def prune_build(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """tether's build cache is the images its builds leave (the steps' parents, which image
        prune removes with their child), as the legacy builder's is in dockerd 20.10; no other
        cache exists, so this checks the filters as dockerd does, reclaims nothing and says so
        with dockerd's `builder prune` event."""
        buildprune.check(filters)
        self.containers.events.publish("builder", "prune", "", {"reclaimed": "0"})
        return {"CachesDeleted": None, "SpaceReclaimed": 0}

    def _layer_sizes(self, images: list[Image]) -> dict[str, int]:
        """Each stored layer's size by chain ID, the name a `Deleted` record gives a layer."""
        sizes: dict[str, int] = {}
        for image in images:
            for diff_id, chain in zip(image.diff_ids, chain_ids(image.diff_ids), strict=True):
                if chain not in sizes:
                    sizes[chain] = self.images.layer_size(diff_id)
        return sizes

    async def _delete(self, image: Image, ref: str, known: dict[str, Image]) -> list[dict[str, str]]:
        """One rmi without force; its conflict (or any failure) spares the image, as in dockerd.
        `known`: the images as the prune found them, by ID (for the events of what goes)."""
        try:
            records = await asyncio.to_thread(self.images.remove, ref, False,
                                              self.containers.users_of_image, True)
        except ApiError as exc:
            log.debug("image prune spares %s: %s", ref, exc.message)
            return []
        publish_removal(self.containers.events, image, records, known)
        return records
