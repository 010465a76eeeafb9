"""Image routes: list, inspect, tag, remove, and tether's offline busybox bootstrap (import is in
archives.py, pull and push in distribution.py: both reached through `POST /images/create`)."""
from __future__ import annotations

import asyncio
from fnmatch import fnmatchcase

from tether.api.http import Request, Response, Router, json_response
from tether.engine.containers import ContainerService
from tether.engine.prune import publish_removal
from tether.image.bootstrap import bootstrap_busybox
from tether.image.store import ImageStore
from tether.rules.errors import BadRequest


class ImageRoutes:
    def __init__(self, store: ImageStore, containers: ContainerService) -> None:
        self.store = store
        self.containers = containers

    def register(self, router: Router) -> None:
        router.add("GET", "/images/json", self.list)
        router.add("GET", "/images/{name:path}/json", self.inspect)
        router.add("POST", "/images/{name:path}/tag", self.tag)
        router.add("DELETE", "/images/{name:path}", self.remove)
        router.add("POST", "/tether/bootstrap/busybox", self.bootstrap)

    async def list(self, req: Request) -> Response:
        references = req.filters().get("reference", [])
        images = self.store.list()
        if not req.qbool("all"):  # as dockerd: untagged images with children are a build's steps
            parents = {i.parent for i in images}
            images = [i for i in images if i.repo_tags or i.repo_digests or i.id not in parents]
        if references:
            images = [i for i in images if any(_ref_matches(r, t) for r in references
                                                for t in i.repo_tags)]
        return json_response([i.summary() for i in images])

    async def inspect(self, req: Request) -> Response:
        return json_response(self.store.resolve(req.params["name"]).inspect())

    async def tag(self, req: Request) -> Response:
        repo = req.q("repo") or ""
        if not repo:
            raise BadRequest("repository name must have at least one component")
        await asyncio.to_thread(self.store.tag, req.params["name"], repo, req.q("tag") or "")
        return Response(201)

    async def remove(self, req: Request) -> Response:
        image = self.store.resolve(req.params["name"])
        known = [i.id for i in self.store.list()]
        report = await asyncio.to_thread(self.store.remove, req.params["name"], req.qbool("force"),
                                         self.containers.users_of_image, not req.qbool("noprune"))
        publish_removal(self.containers.events, image, report, known)
        return json_response(report)

    async def bootstrap(self, req: Request) -> Response:
        image = await asyncio.to_thread(bootstrap_busybox, self.store)
        return json_response({"Id": image.id})


def _ref_matches(pattern: str, repo_tag: str) -> bool:
    """`reference` filter: `busybox` matches any tag of busybox, `busybox:1*` a glob of tags."""
    if ":" not in pattern.rsplit("/", 1)[-1]:
        return fnmatchcase(repo_tag.rsplit(":", 1)[0], pattern)
    return fnmatchcase(repo_tag, pattern)
