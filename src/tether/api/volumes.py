"""Volume routes: `GET /volumes`, `POST /volumes/create`, `GET`/`DELETE /volumes/{name}`,
`POST /volumes/prune`, in the shapes and with the errors of dockerd."""
from __future__ import annotations

from tether.rules import apitypes
from tether.api.http import Request, Response, Router, api_version, json_response, no_content
from tether.engine.volumes import VolumeService


class VolumeRoutes:
    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes

    def register(self, router: Router) -> None:
        router.add("GET", "/volumes", self.list)
        router.add("POST", "/volumes/create", self.create)
        router.add("POST", "/volumes/prune", self.prune)
        router.add("GET", "/volumes/{name}", self.inspect)
        router.add("DELETE", "/volumes/{name}", self.remove)

    async def list(self, req: Request) -> Response:
        volumes = self.volumes.list(req.filters())
        return json_response({"Volumes": [v.inspect() for v in volumes], "Warnings": None})

    async def create(self, req: Request) -> Response:
        body = req.json_as(apitypes.VOLUME_CREATE, required=True) or {}
        name = body.get("Name") or None
        # no name: an anonymous volume, labelled so as dockerd 23+ labels it (what `volume
        # prune` removes from API 1.42 on without `all`)
        volume = self.volumes.create(name, body.get("Driver") or "local", body.get("DriverOpts"),
                                     body.get("Labels"), anonymous=name is None)
        return json_response(volume.inspect(), status=201)

    async def inspect(self, req: Request) -> Response:
        return json_response(self.volumes.get(req.params["name"]).inspect())

    async def remove(self, req: Request) -> Response:
        self.volumes.remove(req.params["name"], force=req.qbool("force"))
        return no_content()

    async def prune(self, req: Request) -> Response:
        removed, reclaimed = await self.volumes.prune(req.filters(), api_version(req.api_version))
        return json_response({"VolumesDeleted": removed, "SpaceReclaimed": reclaimed})
