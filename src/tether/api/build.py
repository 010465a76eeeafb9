"""Build routes: POST /build (the legacy builder API of `DOCKER_BUILDKIT=0 docker build` and the
docker SDK), POST /commit, and GET /images/{name}/history, which shows what builds record."""
from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from tether.api.http import Request, Response, Router, StreamResponse, json_response
from tether.api.piped import error_line
from tether.engine.builder import Builder, BuildError, BuildOptions
from tether.engine.container_files import ContainerFiles
from tether.engine.containers import ContainerService
from tether.engine.images import ImageService
from tether.image.build import context, instructions
from tether.rules import refs
from tether.rules.errors import ApiError, BadRequest

_END = object()


def _json_param(req: Request, name: str) -> dict[str, Any]:
    """A JSON map query parameter (`buildargs`, `labels`), read leniently as dockerd does."""
    raw = req.q(name) or ""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest(f"invalid {name} parameter: {raw}") from None
    return value if isinstance(value, dict) else {}


def build_options(req: Request) -> tuple[BuildOptions, list[str]]:
    """The query of POST /build as builder options, and the tags already normalised (a bad
    tag is refused before the build starts, as dockerd does)."""
    tags = [refs.normalize_tag(t) for t in req.query.get("t", []) if t]
    options = BuildOptions(
        dockerfile=req.q("dockerfile") or "Dockerfile", tags=tags,
        build_args={k: (None if v is None else str(v)) for k, v in _json_param(req, "buildargs").items()},
        labels={k: str(v) for k, v in _json_param(req, "labels").items()},
        no_cache=req.qbool("nocache"), rm=req.qbool("rm", True), force_rm=req.qbool("forcerm"),
        target=req.q("target") or "", cache_from=_cache_from(req),
        network_mode=req.q("networkmode") or "",
        extra_hosts=[h for value in req.query.get("extrahosts", []) for h in (value or "").split()])
    return options, tags


def _cache_from(req: Request) -> list[str] | None:
    """`cachefrom`, a JSON list of image names; absent or empty: the whole local cache."""
    raw = req.q("cachefrom") or ""
    if not raw:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        raise BadRequest(f"invalid cachefrom parameter: {raw}") from None
    if not isinstance(names, list):
        raise BadRequest(f"invalid cachefrom parameter: {raw}")
    return [str(n) for n in names] or None


def _message(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


class BuildRoutes:
    def __init__(self, images: ImageService, containers: ContainerService,
                 files: ContainerFiles) -> None:
        self.images = images
        self.files = files
        # a missing FROM image is pulled anonymously (a registry on loopback, or a public one)
        self.builder = Builder(images.store, containers, containers.paths.builder,
                               images.pull_for_build())

    def register(self, router: Router) -> None:
        router.add("POST", "/build", self.build)
        router.add("POST", "/commit", self.commit)
        router.add("GET", "/images/{name:path}/history", self.history)

    async def build(self, req: Request) -> StreamResponse:
        options, tags = build_options(req)
        text = await asyncio.to_thread(context.dockerfile_from_tar, req.body_stream(), options.dockerfile)
        instructions.parse(text, options.target, options.labels)  # dockerd's errors come as replies
        quiet = req.qbool("q")
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def say(message: dict[str, Any] | str) -> None:
            if not quiet:
                queue.put_nowait({"stream": message} if isinstance(message, str) else message)

        async def run() -> None:
            try:
                image = await self.builder.build(req.body_stream(), options, say)
                queue.put_nowait({"aux": {"ID": image.id}})
                if quiet:
                    queue.put_nowait({"stream": image.id + "\n"})
                say(f"Successfully built {image.short_id}\n")
                for tag in tags:
                    repo, _, name = tag.rpartition(":")
                    await self.images.tag(image.id, repo, name)
                    say(f"Successfully tagged {tag}\n")
            except BuildError as exc:
                queue.put_nowait(error_line(exc.message, exc.code))
            except ApiError as exc:
                queue.put_nowait(error_line(exc.message))
            except Exception as exc:  # reported to the client: the stream has started
                queue.put_nowait(error_line(str(exc)))
            finally:
                queue.put_nowait(_END)

        async def body() -> AsyncIterator[bytes]:
            task = asyncio.create_task(run())
            try:
                while (item := await queue.get()) is not _END:
                    yield _message(item)
            finally:
                if not task.done():
                    task.cancel()
        return StreamResponse(body(), "application/json")

    async def commit(self, req: Request) -> Response:
        """docker commit: the container's upper dir as a layer on top of its image."""
        body = req.json() if req.body else {}
        image = await self.files.commit(req.q("container") or "", body,
                                        req.query.get("changes", []), req.q("repo") or "",
                                        req.q("tag") or "", req.q("comment") or "",
                                        req.q("author") or "",
                                        # as dockerd: an empty or absent `pause` is true
                                        not req.q("pause") or req.qbool("pause"))
        return json_response({"Id": image.id}, status=201)

    async def history(self, req: Request) -> Response:
        return json_response(await self.images.history(req.params["name"]))
