"""The image verbs of the API (list, inspect, history, tag, remove, pull, push, save, load,
import), each emitting its image event as dockerd's image service does.

dockerd logs an image event with the image's labels (while it still resolves) and a `name`
attribute: `tag` names the new familiar tag, `pull` and `push` the repository (the actor is the
reference as given), `import`, `load`, `save`, `untag` and `delete` the image ID itself. A tag
made by an import comes before its `import`; a load's tags make no `tag` event. Those orders and
attributes were read off Docker 20.10 (tests/integration/test_events_vs_docker.py).

Pull, push, load, save and import run in worker threads (their progress goes out as a stream);
their events cross back to the event loop, where the bus lives, through `_from_thread`.
"""
from __future__ import annotations

import asyncio
import contextlib
from fnmatch import fnmatchcase
from typing import Any, BinaryIO, Callable, Iterable

from tether.engine.events import EventBus
from tether.engine.prune import publish_removal
from tether.image import archive, distribution
from tether.image.bootstrap import bootstrap_busybox
from tether.image.distribution import Emit
from tether.image.registry import Credentials
from tether.image.store import Image, ImageStore
from tether.rules import refs
from tether.rules.errors import ApiError, BadRequest

Publish = Callable[[str, str, str], None]


class ImageService:
    def __init__(self, store: ImageStore, events: EventBus,
                 users_of_image: Callable[[str], list[tuple[str, bool]]],
                 insecure_registries: Iterable[str] = ()) -> None:
        self.store = store
        self.events = events
        self.users_of_image = users_of_image
        self.insecure = list(insecure_registries)

    # ---- events ----------------------------------------------------------------------------

    def _attributes(self, actor: str, name: str) -> dict[str, str]:
        """dockerd's LogImageEvent attributes: the image's labels if `actor` still names an
        image, and `name`. Blocking (the store's lock, which an unpack may hold): called in a
        worker thread, never on the event loop."""
        labels: dict[str, str] = {}
        with contextlib.suppress(ApiError):
            labels = self.store.resolve(actor).labels
        return {**labels, "name": name}

    def _from_thread(self) -> Publish:
        """An event logger for a worker thread of the current request (made on the loop): the
        attributes are read in the thread, the bus (not thread-safe) is written on the loop."""
        loop = asyncio.get_running_loop()

        def publish(actor: str, name: str, action: str) -> None:
            attributes = self._attributes(actor, name)
            loop.call_soon_threadsafe(self.events.publish, "image", action, actor, attributes)
        return publish

    # ---- reads ----------------------------------------------------------------------------

    def list(self, all_: bool, references: list[str]) -> list[dict[str, Any]]:
        """`GET /images/json`: without `all`, untagged images with children (a build's steps)
        are left out, as dockerd; `reference` filters by repository or tag glob."""
        images = self.store.list()
        if not all_:
            parents = {i.parent for i in images}
            images = [i for i in images if i.repo_tags or i.repo_digests or i.id not in parents]
        if references:
            images = [i for i in images if any(_ref_matches(r, t) for r in references
                                                for t in i.repo_tags)]
        return [i.summary() for i in images]

    def inspect(self, name: str) -> dict[str, Any]:
        return self.store.resolve(name).inspect()

    async def history(self, name: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.store.history, name)

    # ---- tags and removal -----------------------------------------------------------------

    async def tag(self, ref: str, repo: str, tag: str = "") -> None:
        """Point `repo[:tag]` at the image `ref` names. The `tag` event names the reference as
        given (`foo` stays `foo`, though it is stored as `foo:latest`), as dockerd's."""
        if not repo:
            raise BadRequest("repository name must have at least one component")
        self.events.publish("image", "tag", *await asyncio.to_thread(self._tag, ref, repo, tag))

    def _tag(self, ref: str, repo: str, tag: str) -> tuple[str, dict[str, str]]:
        """Tag by the image's ID, so that the event's actor is the image tagged even if `ref`
        moves meanwhile; the actor and the event's attributes."""
        image_id = self.store.resolve(ref).id
        self.store.tag(image_id, repo, tag)
        named = refs.parse_normalized(repo)
        return image_id, self._attributes(image_id, str(named.with_tag(tag) if tag else named))

    async def remove(self, name: str, force: bool, prune: bool) -> list[dict[str, str]]:
        """`docker rmi`: the records dockerd answers with, `untag`/`delete` events for them."""
        image = self.store.resolve(name)
        known = [i.id for i in self.store.list()]
        report = await asyncio.to_thread(self.store.remove, name, force, self.users_of_image,
                                         prune)
        publish_removal(self.events, image, report, known)
        return report

    async def bootstrap(self) -> Image:
        """tether's offline busybox image (no event: no Docker verb does this)."""
        return await asyncio.to_thread(bootstrap_busybox, self.store)

    # ---- archives -------------------------------------------------------------------------

    async def save_writer(self, names: list[str]) -> Callable[[BinaryIO], None]:
        """`docker save`: the images are chosen now (an unknown name is an HTTP error); the
        returned writer puts the archive into a stream and then logs a `save` per image."""
        items = await asyncio.to_thread(archive.select, self.store, names)
        publish = self._from_thread()

        def write(out: BinaryIO) -> None:
            archive.save(self.store, items, out)
            for image_id in dict.fromkeys(item.image.id for item in items):
                publish(image_id, image_id, "save")
        return write

    async def loader(self, body: BinaryIO, quiet: bool) -> Callable[[Emit], None]:
        """`docker load`: the archive is checked and its image list read now; the returned
        work stores the images (progress through `emit`) and logs a `load` for each as soon as
        it is stored, as dockerd."""
        source = await asyncio.to_thread(archive.Archive, body)
        images = await asyncio.to_thread(archive.read_images, source)
        for image in images:
            archive.check_layers(image)
        publish = self._from_thread()

        def work(emit: Emit) -> None:
            archive.load(self.store, source, images, quiet, emit,
                         stored=lambda image_id: publish(image_id, image_id, "load"))
        return work

    def importer(self) -> Callable[[BinaryIO, str, list[str], str], Image]:
        """`docker import`, for a worker thread: one layer from a tar, tagged `repo` when given
        (its `tag` event first, as dockerd), then the `import` event."""
        publish = self._from_thread()

        def import_tar(source: BinaryIO, repo: str, changes: list[str], message: str) -> Image:
            image = self.store.import_tar(source, repo or None, changes, message)
            if repo:  # the reference as given, as the tag's event of `tag`
                publish(image.id, str(refs.parse_normalized(repo)), "tag")
            publish(image.id, image.id, "import")
            return image
        return import_tar

    # ---- registries -----------------------------------------------------------------------

    async def puller(self, from_image: str, tag: str,
                     creds: Credentials | None) -> Callable[[Emit], None]:
        """`docker pull`: the manifests are resolved now (dockerd's HTTP errors); the returned
        work fetches and stores them, then logs `pull` for the reference as given."""
        ref = distribution.pull_reference(from_image, tag)
        pull = await asyncio.to_thread(distribution.resolve_pull, ref, creds, self.insecure)
        publish = self._from_thread()

        def work(emit: Emit) -> None:
            pull.run(self.store, emit)
            publish(str(ref), ref.familiar_name, "pull")
        return work

    def pull_for_build(self) -> Callable[[str, Emit], None]:
        """A build's missing FROM image, pulled anonymously from a worker thread (its `pull`
        event as any pull's)."""
        publish = self._from_thread()

        def pull(name: str, emit: Emit) -> None:
            ref = refs.parse_normalized(name).tag_name_only()
            distribution.resolve_pull(ref, None, self.insecure).run(self.store, emit)
            publish(str(ref), ref.familiar_name, "pull")
        return pull

    def pusher(self, name: str, tag: str, creds: Credentials | None) -> Callable[[Emit], Any]:
        """`docker push`: a bad name is an HTTP error now, everything else (a missing tag too)
        is reported in the stream, as dockerd; `push` is logged for the reference as given."""
        ref = refs.parse_normalized(name)
        given = ref.with_tag(tag) if tag else ref
        publish = self._from_thread()

        def work(emit: Emit) -> Any:
            results = distribution.resolve_push(self.store, name, tag, creds,
                                                self.insecure).run(self.store, emit)
            publish(str(given), given.familiar_name, "push")
            return results
        return work


def _ref_matches(pattern: str, repo_tag: str) -> bool:
    """`reference` filter: `busybox` matches any tag of busybox, `busybox:1*` a glob of tags."""
    if ":" not in pattern.rsplit("/", 1)[-1]:
        return fnmatchcase(repo_tag.rsplit(":", 1)[0], pattern)
    return fnmatchcase(repo_tag, pattern)
