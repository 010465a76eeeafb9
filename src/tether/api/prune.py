"""Prune routes: `POST /containers/prune`, `POST /images/prune` and `POST /build/prune` (volume
and network prunes live with their resources), with dockerd's statuses for bad filters."""
from __future__ import annotations

from tether.api.http import Request, Response, Router, json_response
from tether.engine.prune import Pruner
from tether.rules.errors import ApiError, BadRequest


class PruneRoutes:
    def __init__(self, pruner: Pruner) -> None:
        self.pruner = pruner

    def register(self, router: Router) -> None:
        router.add("POST", "/containers/prune", self.containers)
        router.add("POST", "/images/prune", self.images)
        router.add("POST", "/build/prune", self.build)

    async def containers(self, req: Request) -> Response:
        return json_response(await self.pruner.prune_containers(req.filters()))

    async def images(self, req: Request) -> Response:
        return json_response(await self.pruner.prune_images(_filters(req, "")))

    async def build(self, req: Request) -> Response:
        return json_response(self.pruner.prune_build(_filters(req, "could not parse filters: ")))


def _filters(req: Request, prefix: str) -> dict[str, list[str]]:
    """The filters; a malformed parameter is a 500 here, as these dockerd handlers pass
    FromJSON's error on untyped."""
    try:
        return req.filters()
    except BadRequest as exc:
        raise ApiError(prefix + exc.message, 500) from None
