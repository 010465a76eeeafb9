"""Archive routes: `docker save` (`GET /images/get`, `GET /images/{name}/get`), `docker load`
(`POST /images/load`), `docker export` (`GET /containers/{id}/export`) and `docker import`
(`POST /images/create?fromSrc=`, reached through the distribution routes' dispatch).

What dockerd answers with an HTTP error (unknown image, not an archive) is settled before the
body starts; later failures of a load or an import become an `errorDetail` line, as the docker
CLI and SDK expect once a 200 has been sent.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

from tether.api.http import Request, Router, StreamResponse
from tether.api.piped import progress_stream, written_chunks
from tether.engine.container_files import ContainerFiles
from tether.engine.images import ImageService
from tether.rules.errors import BadRequest
from tether.image import archive
from tether.image.distribution import Emit, Throttled, message

TAR = "application/x-tar"
_URL_TIMEOUT = 60.0
_ERROR_BODY_MAX = 64 * 1024


class ArchiveRoutes:
    def __init__(self, images: ImageService, files: ContainerFiles) -> None:
        self.images = images
        self.files = files

    def register(self, router: Router) -> None:
        router.add("GET", "/images/get", self.save)
        router.add("GET", "/images/{name:path}/get", self.save)
        router.add("POST", "/images/load", self.load)
        router.add("GET", "/containers/{id:path}/export", self.export)

    async def save(self, req: Request) -> StreamResponse:
        names = [req.params["name"]] if "name" in req.params else req.query.get("names", [])
        return StreamResponse(written_chunks(await self.images.save_writer(names)), TAR)

    async def load(self, req: Request) -> StreamResponse:
        """The archive is checked (and its image list read) before the stream starts."""
        try:
            work = await self.images.loader(req.body_stream(), req.qbool("quiet"))
        except archive.NotATar as exc:
            return progress_stream(lambda emit, error=exc: _raise(error))
        return progress_stream(work)

    async def export(self, req: Request) -> StreamResponse:
        """The container's overlay is mounted (and its lifecycle lock held) by the body itself,
        from its first chunk to its last: a body never started holds nothing."""
        exporting = self.files.export(req.params["id"])

        async def body() -> AsyncIterator[bytes]:
            async with exporting as write, contextlib.aclosing(written_chunks(write)) as chunks:
                async for chunk in chunks:  # the writer thread ended before the unmount
                    yield chunk
        return StreamResponse(body(), TAR)

    async def import_image(self, req: Request) -> StreamResponse:
        """`fromSrc=-`: the request body; `fromSrc=URL`: downloaded by the daemon (Docker's
        "Downloading from" and "Importing" progress), plain http assumed without a scheme."""
        src = req.q("fromSrc") or ""
        repo = req.q("repo") or ""
        if repo and req.q("tag"):
            repo = f"{repo}:{req.q('tag')}"
        changes = req.query.get("changes", [])
        import_tar = self.images.importer()
        if src == "-":
            image = await asyncio.to_thread(import_tar, req.body_stream(), repo, changes,
                                            req.q("message") or "")

            async def body() -> AsyncIterator[bytes]:
                yield b'{"status":"' + image.id.encode() + b'"}\r\n'
            return StreamResponse(body(), "application/json")
        url = download_url(src)
        comment = req.q("message") or f"Imported from {src}"
        resp = await asyncio.to_thread(_open_url, url)  # a failed GET is an HTTP error, as dockerd's

        def work(emit: Emit) -> None:
            with resp:
                emit(message(f"Downloading from {url}"))
                total = int(resp.headers.get("Content-Length") or 0)
                source = io.BufferedReader(archive.CountingReader(resp, Throttled(emit, "Importing", "", total)))
                image = import_tar(source, repo, changes, comment)
            emit(message(image.id))
        return progress_stream(work)


def download_url(src: str) -> str:
    """`fromSrc` as dockerd reads it: no scheme means `http://<src>`; only http(s) is fetched,
    so a request cannot make the daemon read its own files (`file://`)."""
    if "://" not in src:
        src = f"http://{src}"
    scheme = urlsplit(src).scheme
    if scheme not in ("http", "https"):
        raise BadRequest(f'Get "{src}": unsupported protocol scheme "{scheme}"')
    return src


def _open_url(url: str) -> Any:
    """GET `url` (urllib imported on first use: it pulls in http.client, email and ssl)."""
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=_URL_TIMEOUT)
    except urllib.error.HTTPError as exc:
        body = exc.read(_ERROR_BODY_MAX).decode(errors="replace")
        raise BadRequest(f"failed to GET {url} with status {exc.code} {exc.reason}: {body}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BadRequest(f'Get "{url}": {reason}') from exc


def _raise(exc: Exception) -> None:
    raise exc
