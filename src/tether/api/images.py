"""Image routes: list, inspect, tag, remove, and tether's offline busybox bootstrap (import is in
archives.py, pull and push in distribution.py: both reached through `POST /images/create`)."""
from __future__ import annotations

from tether.api.http import Request, Response, Router, json_response
from tether.engine.images import ImageService


class ImageRoutes:
    def __init__(self, images: ImageService) -> None:
        self.images = images

    def register(self, router: Router) -> None:
        router.add("GET", "/images/json", self.list)
        router.add("GET", "/images/{name:path}/json", self.inspect)
        router.add("POST", "/images/{name:path}/tag", self.tag)
        router.add("DELETE", "/images/{name:path}", self.remove)
        router.add("POST", "/tether/bootstrap/busybox", self.bootstrap)

    async def list(self, req: Request) -> Response:
        return json_response(self.images.list(req.qbool("all"),
                                              req.filters().get("reference", [])))

    async def inspect(self, req: Request) -> Response:
        return json_response(self.images.inspect(req.params["name"]))

    async def tag(self, req: Request) -> Response:
        await self.images.tag(req.params["name"], req.q("repo") or "", req.q("tag") or "")
        return Response(201)

    async def remove(self, req: Request) -> Response:
        return json_response(await self.images.remove(req.params["name"], req.qbool("force"),
                                                      not req.qbool("noprune")))

    async def bootstrap(self, req: Request) -> Response:
        image = await self.images.bootstrap()
        return json_response({"Id": image.id})
