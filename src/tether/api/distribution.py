"""Registry routes: pull (`POST /images/create?fromImage=`), push, and login (`POST /auth`).

`POST /images/create` is one route for two jobs: with `fromImage` it pulls, otherwise it imports
(`fromSrc`, handled by `importer`, the image routes' handler). The slow part of a pull or push
runs in a worker thread; its progress messages cross to the event loop through a queue and go
out as dockerd's JSON lines. What dockerd answers with an HTTP status (bad name, unknown
manifest, denied) is found before the stream starts; later failures become an `errorDetail`
line, as the docker CLI and SDK expect once a 200 has been sent.
"""
from __future__ import annotations

import asyncio
from typing import Any

from tether.api.http import Handler, Request, Response, Router, StreamResponse, json_response
from tether.api.piped import progress_stream
from tether.engine.images import ImageService
from tether.image import distribution, search
from tether.image.registry import Credentials, RegistryClient, credentials_from_header, \
    credentials_from_json
from tether.rules import refs
from tether.rules.errors import ApiError, BadRequest



class DistributionRoutes:
    def __init__(self, images: ImageService, importer: Handler) -> None:
        self.images = images
        self.importer = importer
        self.insecure = images.insecure

    def register(self, router: Router) -> None:
        """`POST /images/create` is registered here only; imports go to `importer`."""
        router.add("POST", "/images/create", self.create)
        router.add("POST", "/images/{name:path}/push", self.push)
        router.add("POST", "/auth", self.auth)
        router.add("GET", "/distribution/{name:path}/json", self.inspect)
        router.add("GET", "/images/search", self.search)

    async def create(self, req: Request) -> Response | StreamResponse:
        if not req.q("fromImage"):
            return await self.importer(req)
        creds = credentials_from_header(req.headers.get("x-registry-auth"))
        return progress_stream(await self.images.puller(req.q("fromImage") or "",
                                                        req.q("tag") or "", creds))

    async def push(self, req: Request) -> StreamResponse:
        """A bad name is a 400; everything else, a missing tag included, is reported in the stream
        (as dockerd does)."""
        creds = credentials_from_header(req.headers.get("x-registry-auth"))
        return progress_stream(self.images.pusher(req.params["name"], req.q("tag") or "", creds))

    async def inspect(self, req: Request) -> Response:
        """Registry inspect (`docker manifest inspect`-like, docker-py's `inspect_distribution`):
        the manifest's descriptor and platforms, with the client's credentials."""
        ref = refs.parse_normalized(req.params["name"]).tag_name_only()
        creds = credentials_from_header(req.headers.get("x-registry-auth"))
        return json_response(await asyncio.to_thread(distribution.inspect, ref, creds,
                                                     self.insecure))

    async def search(self, req: Request) -> Response:
        """Docker Hub's (or a named registry's) v1 search; `limit` defaults to 25, as dockerd."""
        try:  # dockerd passes Atoi's error on untyped: a 500
            limit = req.qint("limit", 25)
        except BadRequest as exc:
            raise ApiError(exc.message, 500) from None
        filters = req.filters()
        creds = credentials_from_header(req.headers.get("x-registry-auth"))
        return json_response(await asyncio.to_thread(search.search, req.q("term", "") or "", limit,
                                                     filters, creds, self.insecure))

    async def auth(self, req: Request) -> Response:
        """Check credentials against the registry (dockerd keeps none: the client stores them)."""
        body = _auth_body(req)
        creds = credentials_from_json(body) or Credentials()
        domain = registry_domain(str(body.get("serveraddress") or ""))
        client = RegistryClient(domain, "", creds, self.insecure)
        await asyncio.to_thread(client.login)
        return json_response({"IdentityToken": "", "Status": "Login Succeeded"})


def _auth_body(req: Request) -> dict[str, Any]:
    """`POST /auth`'s body; dockerd's decoding error there is untyped, a 500."""
    try:
        body = req.json() or {}
    except BadRequest as exc:
        raise ApiError(exc.message, 500) from None
    if not isinstance(body, dict):
        raise BadRequest("invalid auth configuration")
    return body


def registry_domain(server: str) -> str:
    """`https://index.docker.io/v1/`, `localhost:5000`, `http://host/` -> the registry's domain."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if not host or host in (refs.LEGACY_DOMAIN, "registry-1.docker.io"):
        return refs.DEFAULT_DOMAIN
    return host
