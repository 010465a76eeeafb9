"""Image routes: list, inspect, tag, remove, import, and tether's offline busybox bootstrap."""
from __future__ import annotations

import asyncio
import io
import json
from fnmatch import fnmatchcase
from typing import AsyncIterator

from tether.api.http import Request, Response, Router, StreamResponse, json_response
from tether.engine.containers import ContainerService
from tether.errors import BadRequest, NotFound
from tether.image.bootstrap import bootstrap_busybox
from tether.image.store import ImageStore


class ImageRoutes:
    def __init__(self, store: ImageStore, containers: ContainerService) -> None:
        self.store = store
        self.containers = containers

    def register(self, router: Router) -> None:
        router.add("GET", "/images/json", self.list)
        router.add("POST", "/images/create", self.create)
        router.add("GET", "/images/{name:path}/json", self.inspect)
        router.add("POST", "/images/{name:path}/tag", self.tag)
        router.add("DELETE", "/images/{name:path}", self.remove)
        router.add("POST", "/tether/bootstrap/busybox", self.bootstrap)

    async def list(self, req: Request) -> Response:
        references = req.filters().get("reference", [])
        images = self.store.list()
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
        await asyncio.to_thread(self.store.tag, req.params["name"], repo, req.q("tag") or "latest")
        return Response(201)

    async def remove(self, req: Request) -> Response:
        report = await asyncio.to_thread(self.store.remove, req.params["name"], req.qbool("force"),
                                         self.containers.users_of_image)
        return json_response(report)

    async def bootstrap(self, req: Request) -> Response:
        image = await asyncio.to_thread(bootstrap_busybox, self.store)
        return json_response({"Id": image.id})

    async def create(self, req: Request) -> StreamResponse:
        """`fromSrc=-` imports the request body; pulling needs the registry client (not built yet)."""
        if req.q("fromImage"):
            name = req.q("fromImage")
            raise NotFound(f"pull access denied for {name}: tether cannot pull images yet; make "
                           "one with 'tether image bootstrap busybox' or 'docker import'")
        if req.q("fromSrc") != "-":
            raise BadRequest("only fromSrc=- (the request body) can be imported")
        repo = req.q("repo") or ""
        if repo and req.q("tag"):
            repo = f"{repo}:{req.q('tag')}"
        image = await asyncio.to_thread(self.store.import_tar, io.BytesIO(req.body), repo or None,
                                        req.query.get("changes", []), req.q("message") or "")

        async def body() -> AsyncIterator[bytes]:
            yield json.dumps({"status": image.id}).encode() + b"\r\n"
        return StreamResponse(body(), "application/json")


def _ref_matches(pattern: str, repo_tag: str) -> bool:
    """`reference` filter: `busybox` matches any tag of busybox, `busybox:1*` a glob of tags."""
    if ":" not in pattern.rsplit("/", 1)[-1]:
        return fnmatchcase(repo_tag.rsplit(":", 1)[0], pattern)
    return fnmatchcase(repo_tag, pattern)
