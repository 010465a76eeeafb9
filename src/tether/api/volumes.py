"""Volume routes: `GET /volumes`, `POST /volumes/create`, `GET`/`DELETE /volumes/{name}`,
`POST /volumes/prune`, in the shapes and with the errors of dockerd."""
from __future__ import annotations

from typing import Any

from tether.api.http import API_VERSION, Request, Response, Router, json_response, no_content
from tether.engine.volumes import VolumeService
from tether.rules.errors import BadRequest

# CreateOptions fields a client may send, with the Go type dockerd decodes them into.
_CREATE_FIELDS = {"Name": "string", "Driver": "string", "DriverOpts": "map[string]string",
                  "Labels": "map[string]string"}


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
        body = create_options(req.json())
        volume = self.volumes.create(body.get("Name") or None, body.get("Driver") or "local",
                                     body.get("DriverOpts"), body.get("Labels"))
        return json_response(volume.inspect(), status=201)

    async def inspect(self, req: Request) -> Response:
        return json_response(self.volumes.get(req.params["name"]).inspect())

    async def remove(self, req: Request) -> Response:
        self.volumes.remove(req.params["name"], force=req.qbool("force"))
        return no_content()

    async def prune(self, req: Request) -> Response:
        removed, reclaimed = await self.volumes.prune(req.filters(), api_version(req.api_version))
        return json_response({"VolumesDeleted": removed, "SpaceReclaimed": reclaimed})


def api_version(value: str | None) -> tuple[int, int]:
    """The request's API version as a tuple; an unversioned request speaks the newest."""
    major, _, minor = (value or API_VERSION).partition(".")
    return int(major), int(minor or 0)


def create_options(body: Any) -> dict[str, Any]:
    """Check a `POST /volumes/create` body field by field, with Go's JSON decoding errors."""
    if body is None:
        raise BadRequest("got EOF while reading request body")
    if not isinstance(body, dict):
        raise BadRequest(f"json: cannot unmarshal {_go_kind(body)} into Go value of type "
                         "volume.CreateOptions")
    for field, go_type in _CREATE_FIELDS.items():
        value = body.get(field)
        if value is None or isinstance(value, str) and go_type == "string":
            continue
        if go_type == "string" or not isinstance(value, dict):
            raise _unmarshal_error(value, field, go_type)
        for item in value.values():
            if not isinstance(item, str):
                raise _unmarshal_error(item, field, "string")
    return body


def _unmarshal_error(value: Any, field: str, go_type: str) -> BadRequest:
    return BadRequest(f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                      f"CreateOptions.{field} of type {go_type}")


def _go_kind(value: Any) -> str:
    """How Go's encoding/json names a JSON value it could not decode."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
