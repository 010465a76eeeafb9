"""The content-addressed image store: config and layer blobs, unpacked layers, tags.

Layout under `root` (the daemon passes `<data-root>/image`):
- `blobs/sha256/<hex>`: image configs (the image ID is the sha256 of these exact bytes); in a
  store an older tether wrote, also layer tars, uncompressed and named by their diff_id.
- `layers/<diffid-hex>/`: each layer unpacked once as it arrives (`diff/`, shared as an overlay
  lower dir), with its `layer.json` and either the blob a registry sent or a tar-split record
  to give its tar back (intake.py, layertar.py). A layer is in the store once this dir has its
  `layer.json`, or (older stores) once its tar is in `blobs/`; the latter is unpacked lazily.
- `images.json`: the images that exist, with what is not in their config (size, last tag time).
- `repositories.json`: every tag, in Docker's familiar form: {"busybox:latest": "sha256:..."}.

Blobs are written before the records that name them, and removed after, so a crash leaves at worst
unreferenced blobs and `.tmp-` entries, which start-up removes. One lock serialises mutations: the
daemon calls the slow parts from worker threads.

A damaged store never stops the daemon: a record that cannot be read is renamed aside
(`<name>.corrupt-<ns>`) and the store starts without it, an image whose config blob is gone or
unreadable is left out (with its tags), each logged. Start-up's blob collection is then skipped:
blobs that no readable record names may still be an image's, and are kept for a repair.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from tether.image import intake, layers
from tether.image.changes import apply_changes
from tether.image.layertar import StoredLayer
from tether.rules import refs
from tether.rules.errors import BadRequest, Conflict, NotFound
from tether.rules.times import ZERO_TIME
from tether.state import read_object_or_set_aside, write_json_atomic

log = logging.getLogger("tether.images")

ContainerUsers = Callable[[str], list[tuple[str, bool]]]
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}
# Go's container.Config field order; None marks the `omitempty` fields dropped when empty.
_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False),
    ("StdinOnce", False), ("Env", ...), ("Cmd", ...), ("Healthcheck", None), ("ArgsEscaped", None),
    ("Image", ""), ("Volumes", ...), ("WorkingDir", ""), ("Entrypoint", ...), ("NetworkDisabled", None),
    ("MacAddress", None), ("OnBuild", ...), ("Labels", ...), ("StopSignal", None), ("StopTimeout", None),
    ("Shell", None),
]


def container_config(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A container Config as Go's json.Marshal writes it: fixed key order, omitempty applied."""
    values = values or {}
    result: dict[str, Any] = {}
    for key, default in _CONFIG_FIELDS:
        value = values.get(key, None if default is ... else default)
        if default is None and not value:
            continue
        result[key] = value
    return result


def discard_arriving(arriving: list[tuple[str, Future[layers.PreparedLayer | None]]]) -> None:
    """Wait for the preparations in `arriving` and discard what they made (a no-op for layers
    already finished): what a failed pull or load leaves prepared."""
    for _, future in arriving:
        if not future.cancelled() and future.exception() is None:
            ready = future.result()
            if ready is not None:
                ready.discard()


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros."""
    seconds, frac = divmod(ns, 10**9)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return f"{base}{fraction}Z"


def unix_seconds(rfc3339: str) -> int:
    """The whole seconds of an RFC 3339 UTC time (what /images/json's `Created` carries)."""
    whole = rfc3339.rstrip("Z").split(".")[0]
    return int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def go_arch() -> str:
    """This machine's architecture in Go's GOARCH words, as image configs name it."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI chain IDs of a layer stack: how Docker names layers in `Deleted:` records."""
    result: list[str] = []
    for diff_id in diff_ids:
        if not result:
            result.append(diff_id)
        else:
            result.append("sha256:" + hashlib.sha256(f"{result[-1]} {diff_id}".encode()).hexdigest())
    return result


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def diff_ids_of(config_bytes: bytes) -> list[str]:
    """An image config's `rootfs.diff_ids`, each a well-formed sha256 digest, or a 400: configs
    come from registries and archives, and their diff_ids name the store's layer files (and the
    ones `rmi` deletes), so a malformed one must be refused before anything is stored."""
    try:
        diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"invalid image config: {exc}") from exc
    if not isinstance(diff_ids, list):
        raise BadRequest("invalid image config: rootfs.diff_ids is not a list")
    for diff_id in diff_ids:
        refs.sha256_hex(diff_id)
    return diff_ids


@dataclass
class Image:
    """A snapshot of one image: its config and what the store knows about it."""

    id: str
    config: dict[str, Any]
    repo_tags: list[str]
    size: int
    last_tag_time: str
    layer_root: Path
    repo_digests: list[str] = field(default_factory=list)
    parent: str = ""  # the image a build step or commit was made on ("" for pulled/imported)

    @property
    def short_id(self) -> str:
        return _hex(self.id)[:12]

    @property
    def labels(self) -> dict[str, str]:
        """The image's Config.Labels ({} without any): what events and filters read."""
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    def _graph_driver(self) -> dict[str, Any]:
        """Overlay paths in Docker's shape (the top layer plays the image's `diff`)."""
        dirs = [self.layer_root / _hex(d) for d in reversed(self.diff_ids)]
        data: dict[str, str] = {}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(str(d / "diff") for d in dirs[1:])
        if dirs:
            data.update(MergedDir=str(dirs[0] / "merged"), UpperDir=str(dirs[0] / "diff"),
                        WorkDir=str(dirs[0] / "work"))
        return {"Data": data, "Name": "overlay2"}

    def inspect(self) -> dict[str, Any]:
        """GET /images/{name}/json."""
        cfg = self.config
        return {
            "Id": self.id, "RepoTags": list(self.repo_tags), "RepoDigests": list(self.repo_digests),
            "Parent": self.parent,
            "Comment": cfg.get("comment", ""), "Created": cfg.get("created", ZERO_TIME),
            "Container": cfg.get("container", ""),
            "ContainerConfig": container_config(cfg.get("container_config")),
            "DockerVersion": cfg.get("docker_version", ""), "Author": cfg.get("author", ""),
            "Config": container_config(cfg.get("config")), "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""), "Size": self.size, "VirtualSize": self.size,
            "GraphDriver": self._graph_driver(),
            "RootFS": {"Type": "layers", "Layers": self.diff_ids},
            "Metadata": {"LastTagTime": self.last_tag_time},
        }

    def summary(self) -> dict[str, Any]:
        """One item of GET /images/json."""
        return {
            "Containers": -1, "Created": unix_seconds(self.config.get("created", ZERO_TIME)),
            "Id": self.id, "Labels": (self.config.get("config") or {}).get("Labels"),
            "ParentId": self.parent,
            "RepoDigests": list(self.repo_digests), "RepoTags": list(self.repo_tags), "SharedSize": -1, "Size": self.size,
            "VirtualSize": self.size,
        }


@dataclass
class _DeleteConflict:
    """Docker's imageDeleteConflict: `used` says a container (not a tag) is the reason."""

    message: str
    used: bool


class ImageStore:
    """Images, tags and layers under `root`; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.layers.mkdir(parents=True, exist_ok=True)
        layers.spread_subtrees(self.layers)
        self._lock = threading.RLock()
        self._damaged = False  # a record or config could not be read: collect no blobs
        self._tags: dict[str, str] = self._load("repositories.json")
        self._images: dict[str, dict[str, Any]] = self._load("images.json")
        self._configs: dict[str, dict[str, Any]] = {}
        self._layer_sizes: dict[str, int] = {}  # diff_id -> size; a layer's content never changes
        self._held: Counter[str] = Counter()  # diff_id -> operations (pull, load, commit) using it
        self._unclaimed: set[str] = set()  # held layers stored or released while held: see keeping_layers
        self._arriving: dict[str, layers.PreparedLayer] = {}  # received, not finished: see arriving_layer
        self._leave_out_unreadable_images()
        if self._damaged:
            log.error("image store damaged: unreferenced blobs are kept, not collected")
        else:
            self._collect_garbage()

    # --- records ---

    def _load(self, name: str) -> dict[str, Any]:
        """A record of the store, or {} when there is none; one that cannot be read is set
        aside (state.read_object_or_set_aside) and logged, and the store starts without it."""
        record = read_object_or_set_aside(self.root / name)
        if record is None:
            self._damaged = True
            log.error("image store record unreadable, set aside", extra={"ctx": {"file": name}})
            return {}
        return record

    def _leave_out_unreadable_images(self) -> None:
        """Images whose entry or config blob cannot be read are left out, and so are tags that
        name no image left: an image without its config cannot be listed, inspected or run."""
        for image_id, meta in list(self._images.items()):
            try:
                if not isinstance(meta, dict) or not isinstance(meta.get("size"), int):
                    raise ValueError("malformed entry in images.json")
                diff_ids = self._config(image_id)["rootfs"]["diff_ids"]
                if not isinstance(diff_ids, list):
                    raise ValueError("config without rootfs.diff_ids")
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._damaged = True
                self._configs.pop(image_id, None)
                del self._images[image_id]
                log.error("image left out: its config cannot be read",
                          extra={"ctx": {"image": image_id, "error": str(exc)}})
        dangling = [tag for tag, image_id in self._tags.items() if image_id not in self._images]
        for tag in dangling:
            del self._tags[tag]
        if dangling:
            self._damaged = True
            log.error("tags of unknown images left out", extra={"ctx": {"tags": dangling}})

    def _save(self) -> None:
        write_json_atomic(self.root / "images.json", self._images)
        write_json_atomic(self.root / "repositories.json", self._tags)

    def _collect_garbage(self) -> None:
        """Remove what a crash may have left: temporaries, blobs no image names, and layers
        stored for an image that was never recorded (still marked `unrecorded`).

        A layer blob whose layer is unpacked is kept, and so is a recorded layer no image names:
        a container of a force-removed image may still use that layer as its lower dir.
        """
        for tmp in [*self.blobs.glob(".tmp-*"), *self.layers.glob(".tmp-*")]:
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        wanted = set(self._images)
        for image_id in self._images:
            wanted.update(self._config(image_id)["rootfs"]["diff_ids"])
        for layer in self.layers.iterdir():
            if f"sha256:{layer.name}" not in wanted and (layer / intake.UNRECORDED).exists():
                shutil.rmtree(layer)
        for blob in self.blobs.iterdir():
            if f"sha256:{blob.name}" not in wanted and not (self.layers / blob.name).exists():
                blob.unlink()

    def _config(self, image_id: str) -> dict[str, Any]:
        if image_id not in self._configs:
            self._configs[image_id] = json.loads((self.blobs / _hex(image_id)).read_bytes())
        return self._configs[image_id]

    def _tags_of(self, image_id: str) -> list[str]:
        return sorted((t for t, i in self._tags.items() if i == image_id), key=refs.sort_key)

    def _image(self, image_id: str) -> Image:
        meta = self._images[image_id]
        return Image(image_id, self._config(image_id), self._tags_of(image_id), meta["size"],
                     meta.get("last_tag_time", ZERO_TIME), self.layers, list(meta.get("repo_digests", [])),
                     meta.get("parent", ""))

    # --- lookup ---

    def resolve(self, ref: str) -> Image:
        """An image by tag, full ID (with or without `sha256:`) or unique ID prefix, as Docker's
        GetImage: invalid references are 400, unknown ones `No such image: <name:tag>`."""
        with self._lock:
            return self._image(self._resolve_id(ref))

    def _resolve_id(self, ref: str) -> str:
        parsed = refs.parse_any(ref)
        if isinstance(parsed, str):
            if parsed in self._images:
                return parsed
            raise NotFound(f"No such image: {parsed}")
        tagged = str(parsed.tag_name_only())
        if parsed.digest is None and tagged in self._tags:
            return self._tags[tagged]
        if parsed.digest is not None:
            by_digest = str(refs.Reference(parsed.domain, parsed.path, None, parsed.digest))
            for image_id, meta in self._images.items():
                if by_digest in meta.get("repo_digests", []):
                    return image_id
        found = self._search(ref)
        if found is None:
            raise NotFound(f"No such image: {tagged}")
        return found

    def _search(self, prefix: str) -> str | None:
        """The one image whose ID starts with `prefix`; none when unknown or ambiguous."""
        hex_prefix = prefix.removeprefix("sha256:")
        if not hex_prefix or any(c not in "0123456789abcdef" for c in hex_prefix):
            return None
        matches = [i for i in self._images if _hex(i).startswith(hex_prefix)]
        return matches[0] if len(matches) == 1 else None

    def list(self) -> list[Image]:
        """All images, newest first (dockerd's order for /images/json)."""
        with self._lock:
            images = [self._image(i) for i in self._images]
        return sorted(images, key=lambda im: (im.config.get("created", ""), im.id), reverse=True)

    # --- tags ---

    def tag(self, ref: str, repo: str, tag: str = "") -> str:
        """Point `repo[:tag]` at the image `ref` names (POST /images/{ref}/tag); returns the tag."""
        named = refs.parse_normalized(repo)
        if named.digest is not None:
            raise BadRequest("refusing to create a tag with a digest reference")
        named = named.with_tag(tag) if tag else named.tag_name_only()
        with self._lock:
            image_id = self._resolve_id(ref)
            self._set_tag(str(named), image_id)
            self._save()
        return str(named)

    def _set_tag(self, tag: str, image_id: str) -> None:
        self._tags[tag] = image_id
        self._images[image_id]["last_tag_time"] = rfc3339_nano(time.time_ns())

    # --- removal (moby daemon/images/image_delete.go) ---

    def remove(self, ref: str, force: bool, users: ContainerUsers, prune: bool = True) -> list[dict[str, str]]:
        """DELETE /images/{ref}: untag, and delete the image once nothing names it; with `prune`
        (no `noprune`) its untagged parents (a build's steps) go too, as far as nothing uses them.

        `users(image_id)` lists the containers made from the image as (id, running).
        """
        pruning = users if prune else None
        with self._lock:
            image_id = self._resolve_id(ref)
            containers = users(image_id)
            records: list[dict[str, str]] = []
            if not self._is_id_prefix(image_id, ref):
                tag = str(refs.parse_normalized(ref).tag_name_only())
                if not force and len(self._tags_of(image_id)) == 1 and containers:
                    raise Conflict(f'conflict: unable to remove repository reference "{ref}" (must force) - '
                                   f"container {containers[0][0][:12]} is using its referenced image "
                                   f"{_hex(image_id)[:12]}")
                self._untag(tag, records)
                if self._tags_of(image_id):
                    return records
                return self._delete(image_id, containers, force, records, quiet=True, prune=pruning)
            if len(self._tags_of(image_id)) == 1:
                conflict = self._conflict(image_id, containers, soft=not force, references=False)
                if conflict is not None:
                    raise Conflict(conflict.message)
                self._untag(self._tags_of(image_id)[0], records)
            return self._delete(image_id, containers, force, records, quiet=False, prune=pruning)

    @staticmethod
    def _is_id_prefix(image_id: str, ref: str) -> bool:
        return image_id.startswith(ref) or _hex(image_id).startswith(ref)

    def _untag(self, tag: str, records: list[dict[str, str]]) -> None:
        """Drop a tag, or a `name@digest` reference (from the image's RepoDigests)."""
        if "@" in tag:
            for meta in self._images.values():
                if tag in meta.get("repo_digests", []):
                    meta["repo_digests"].remove(tag)
        else:
            del self._tags[tag]
        self._save()
        records.append({"Untagged": tag})

    def _conflict(self, image_id: str, containers: list[tuple[str, bool]], soft: bool,
                  references: bool) -> _DeleteConflict | None:
        """The first reason not to delete, in Docker's order: running container (cannot be
        forced), then, unless forcing, tags and stopped containers."""
        short = _hex(image_id)[:12]
        if any(meta.get("parent") == image_id for meta in self._images.values()):
            return _DeleteConflict(f"conflict: unable to delete {short} (cannot be forced) - image has "
                                   "dependent child images", False)
        running = [cid for cid, is_running in containers if is_running]
        stopped = [cid for cid, is_running in containers if not is_running]
        if running:
            return _DeleteConflict(f"conflict: unable to delete {short} (cannot be forced) - image is being "
                                   f"used by running container {running[0][:12]}", True)
        if soft and references and self._tags_of(image_id):
            return _DeleteConflict(f"conflict: unable to delete {short} (must be forced) - image is "
                                   "referenced in multiple repositories", False)
        if soft and stopped:
            return _DeleteConflict(f"conflict: unable to delete {short} (must be forced) - image is being "
                                   f"used by stopped container {stopped[0][:12]}", True)
        return None

    def _delete(self, image_id: str, containers: list[tuple[str, bool]], force: bool,
                records: list[dict[str, str]], quiet: bool,
                prune: ContainerUsers | None = None) -> list[dict[str, str]]:
        """imageDeleteHelper: after the untag that made an image dangling (`quiet`), a conflict
        caused by a container, or by a tag or a child of an image that is not dangling, just
        keeps the image instead of failing. `prune` then goes on with the parent, quietly."""
        conflict = self._conflict(image_id, containers, soft=not force, references=not force)
        if conflict is not None:
            dangling = not self._tags_of(image_id) and not any(
                meta.get("parent") == image_id for meta in self._images.values())
            if quiet and (conflict.used or not dangling):
                return records
            raise Conflict(conflict.message)
        parent = self._images[image_id].get("parent", "")
        for tag in self._tags_of(image_id):
            del self._tags[tag]
            records.append({"Untagged": tag})
        diff_ids = self._config(image_id)["rootfs"]["diff_ids"]
        del self._images[image_id]
        self._save()
        (self.blobs / _hex(image_id)).unlink(missing_ok=True)
        self._configs.pop(image_id, None)
        records.append({"Deleted": image_id})
        if not containers:
            records.extend({"Deleted": chain} for chain in self._release_layers(diff_ids))
        if prune is not None and parent in self._images:
            return self._delete(parent, prune(parent), False, records, quiet=True, prune=prune)
        return records

    def _release_layers(self, diff_ids: list[str]) -> list[str]:
        """Delete the layers no remaining image uses; their chain IDs, top first, as Docker lists."""
        in_use = self._layers_in_use()
        released = []
        for diff_id, chain in reversed(list(zip(diff_ids, chain_ids(diff_ids), strict=True))):
            if diff_id in in_use:
                continue
            if self._held[diff_id]:  # a pull or load is about to use it: it decides on release
                self._unclaimed.add(diff_id)
                continue
            self._remove_layer(diff_id)
            released.append(chain)
        return released

    def _layers_in_use(self) -> set[str]:
        return {d for i in self._images for d in self._config(i)["rootfs"]["diff_ids"]}

    def _remove_layer(self, diff_id: str) -> None:
        shutil.rmtree(self.layers / _hex(diff_id), ignore_errors=True)
        (self.blobs / _hex(diff_id)).unlink(missing_ok=True)
        self._layer_sizes.pop(diff_id, None)

    @contextlib.contextmanager
    def keeping_layers(self, diff_ids: list[str]) -> Iterator[None]:
        """Hold the layers an operation (a pull, a load, a commit) stores or relies on until it
        has recorded its image: an `rmi` meanwhile leaves them alone. On the way out, a layer
        stored under the hold (or released by an `rmi` during it) that no image uses and no
        other operation holds is removed, blob and unpacked dir: a pull or load that failed or
        was cut off half-way leaves no orphan layers behind. Layers that were there before and
        are not claimed stay as they were (a container may use one as its lower dir)."""
        with self._lock:
            self._held.update(diff_ids)
        try:
            yield
        finally:
            with self._lock:
                self._held.subtract(diff_ids)
                idle = {d for d in diff_ids if self._held[d] <= 0}
                for diff_id in idle:
                    del self._held[diff_id]
                    self._arriving.pop(diff_id, None)
                orphans = (idle & self._unclaimed) - self._layers_in_use()
                self._unclaimed -= idle
                for diff_id in orphans:
                    self._remove_layer(diff_id)

    # --- creation ---

    def _record(self, config_bytes: bytes, size: int, repo_tag: str | None,
                repo_digest: str | None = None) -> Image:
        """Write the config blob and the image's records (the caller holds the lock)."""
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        config_path = self.blobs / _hex(image_id)
        if not config_path.exists():
            tmp = self.blobs / f".tmp-{secrets.token_hex(8)}"
            tmp.write_bytes(config_bytes)
            os.replace(tmp, config_path)
        meta = self._images.setdefault(image_id, {"size": size, "last_tag_time": ZERO_TIME})
        if repo_tag is not None:
            self._set_tag(repo_tag, image_id)
        if repo_digest is not None:
            self._add_repo_digest(meta, repo_digest)
        self._save()
        for diff_id in self._config(image_id)["rootfs"]["diff_ids"]:
            (self.layers / _hex(diff_id) / intake.UNRECORDED).unlink(missing_ok=True)
        return self._image(image_id)

    @staticmethod
    def _add_repo_digest(meta: dict[str, Any], repo_digest: str) -> None:
        digests = meta.setdefault("repo_digests", [])
        if repo_digest not in digests:
            digests.append(repo_digest)

    def add_image(self, config_bytes: bytes, layer_tars: list[BinaryIO], repo_tag: str | None = None) -> Image:
        """Store an image from its config bytes and its layer tars, bottom first (tests and
        benchmarks build images so); the tars must hash to the config's diff_ids."""
        tag = refs.normalize_tag(repo_tag) if repo_tag else None
        expected = diff_ids_of(config_bytes)
        if len(expected) != len(layer_tars):
            raise BadRequest("layer tars do not match the config's rootfs.diff_ids")
        with self.keeping_layers(expected):
            prepared: dict[str, layers.PreparedLayer] = {}
            try:
                for diff_id, tar in zip(expected, layer_tars, strict=True):
                    if not self.has_layer(diff_id):
                        ready = self.receive_layer(tar, diff_id)
                        if ready is not None:
                            prepared[diff_id] = ready
                self.unpacked_layers(expected, prepared)
            finally:
                for ready in prepared.values():
                    ready.discard()
            return self.add_image_from_layers(config_bytes, tag)

    # --- layer by layer (pull): layers arrive one at a time and are shared between images ---

    def _stored(self, diff_id: str) -> StoredLayer:
        """Where a layer's bytes are; a malformed `diff_id` is refused rather than allowed to
        name a path outside the store."""
        hex_id = refs.sha256_hex(diff_id)
        return StoredLayer(diff_id, self.layers / hex_id, self.blobs / hex_id)

    def has_layer(self, diff_id: str) -> bool:
        """Whether the layer `diff_id` is stored (a pull skips fetching it)."""
        return self._stored(diff_id).exists()

    def receive_layer(self, fileobj: BinaryIO, diff_id: str,
                      blob: dict[str, Any] | None = None) -> layers.PreparedLayer | None:
        """Read one (possibly compressed) layer tar that must hash to `diff_id`, unpacking it
        as it arrives (intake.receive; `blob`: the registry's descriptor of a pulled blob,
        which is then kept as sent), under a `keeping_layers` hold on it. The layer is in the
        store once `unpacked_layers` finishes it; None when it got there meanwhile."""
        with self._lock:
            if not self._held[diff_id]:
                raise RuntimeError(f"layer {diff_id} stored outside keeping_layers")
        _, ready = intake.receive(fileobj, self.layers, diff_id, blob)
        if ready.layer_dir.exists():
            ready.discard()
            return None
        with self._lock:
            self._arriving[diff_id] = ready
        return ready

    def arriving_layer(self, diff_id: str) -> layers.PreparedLayer | None:
        """A layer another pull has received but not yet finished, shared (the caller discards
        it when done): a concurrent pull of an image with the same layer waits for that one
        download instead of fetching it again."""
        with self._lock:
            ready = self._arriving.get(diff_id)
            if ready is not None and ready.share():
                return ready
            self._arriving.pop(diff_id, None)
            return None

    def put_layer(self, fileobj: BinaryIO, diff_id: str, below: list[str] | None = None) -> None:
        """Store one layer tar that must hash to `diff_id` (a build step, a commit), unpacked
        over the layers `below` (bottom first), under a `keeping_layers` hold on it (which
        removes it again if no image ends up using it)."""
        ready = self.receive_layer(fileobj, diff_id)
        try:
            self.unpacked_layers([*(below or []), diff_id], {diff_id: ready} if ready else {})
        finally:
            if ready is not None:
                ready.discard()

    def add_image_from_layers(self, config_bytes: bytes, repo_tag: str | None = None,
                              repo_digest: str | None = None) -> Image:
        """Record an image whose layers are all stored already (`put_layer`), tagged `repo_tag`
        and known by `repo_digest` (`name@sha256:...`, for RepoDigests and `name@digest` refs)."""
        tag = refs.normalize_tag(repo_tag) if repo_tag else None
        diff_ids = diff_ids_of(config_bytes)
        missing = [d for d in diff_ids if not self.has_layer(d)]
        if missing:
            raise NotFound(f"layer {missing[0]} is not in the store")
        size = sum(self.layer_size(d) for d in diff_ids)
        with self._lock:
            if any(not self.has_layer(d) for d in diff_ids):
                raise Conflict("a layer of the image was removed while it was being stored")
            return self._record(config_bytes, size, tag, repo_digest)

    def add_repo_digest(self, ref: str, repo_digest: str) -> None:
        """Remember that the registry knows image `ref` as `repo_digest` (after a push)."""
        with self._lock:
            self._add_repo_digest(self._images[self._resolve_id(ref)], repo_digest)
            self._save()

    def layer_tar(self, diff_id: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """The uncompressed tar of a stored layer, checked against `diff_id` as it is read
        (what save writes and push compresses)."""
        return self._stored(diff_id).open_tar()

    def layer_tar_size(self, diff_id: str) -> int:
        """The size of that tar."""
        return self._stored(diff_id).tar_size()

    def pulled_blob(self, diff_id: str) -> tuple[Path, dict[str, Any]] | None:
        """The compressed blob a registry sent for the layer (file and descriptor), kept as
        sent; None for a layer that was not pulled."""
        return self._stored(diff_id).blob()

    def config_bytes(self, image: Image) -> bytes:
        """The exact config bytes the image ID hashes (pushed as the config blob)."""
        return (self.blobs / _hex(image.id)).read_bytes()

    def import_tar(self, fileobj: BinaryIO, repo_tag: str | None, changes: list[str], message: str,
                   created: str | None = None) -> Image:
        """POST /images/create?fromSrc=-: one layer from a plain or compressed tar, `--change`s
        applied, history comment `message` or Docker's "Imported from -".

        `created` (RFC 3339) defaults to now; a fixed value makes the image ID a function of the
        input alone, which the offline busybox bootstrap relies on.
        """
        tag = refs.normalize_tag(repo_tag) if repo_tag else None
        config = container_config(apply_changes(container_config(), changes))
        diff_id, ready = intake.receive(fileobj, self.layers, None)
        try:
            config_bytes = self._import_config(config, diff_id, message, created)
            with self.keeping_layers([diff_id]):
                self.unpacked_layers([diff_id], {diff_id: ready})
                return self.add_image_from_layers(config_bytes, tag)
        finally:
            ready.discard()

    @staticmethod
    def _import_config(config: dict[str, Any], diff_id: str, message: str,
                       created: str | None = None) -> bytes:
        """Docker's image config for an import, as compact JSON (the bytes the ID hashes)."""
        created = created or rfc3339_nano(time.time_ns())
        comment = message or "Imported from -"
        image_config = {
            "architecture": go_arch(), "comment": comment, "config": config,
            "container_config": container_config(), "created": created,
            "history": [{"created": created, "comment": comment}], "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        return json.dumps(image_config, separators=(",", ":")).encode()

    # --- parents (build steps, commits): the legacy build cache and `docker history` ---

    def layer_size(self, diff_id: str) -> int:
        """A stored layer's size as Docker counts it, read from its tar once: a build adds an
        image per step on the same base, and a big base layer takes a while to walk."""
        if diff_id not in self._layer_sizes:
            self._layer_sizes[diff_id] = self._stored(diff_id).size()
        return self._layer_sizes[diff_id]

    def set_parent(self, image_id: str, parent_id: str) -> None:
        """Record that `image_id` was made on `parent_id` (kept if already recorded)."""
        with self._lock:
            meta = self._images[image_id]
            if parent_id and "parent" not in meta:
                meta["parent"] = parent_id
                self._save()

    def children(self, parent_id: str) -> list[Image]:
        """The images made on `parent_id`; for "" the images with no parent (FROM scratch)."""
        with self._lock:
            return [self._image(i) for i, meta in self._images.items()
                    if meta.get("parent", "") == parent_id]

    def history(self, ref: str) -> list[dict[str, Any]]:
        """GET /images/{name}/history: newest first, each entry's image ID found through the
        parent chain (`<missing>` beyond it), layer sizes from the stored layers."""
        with self._lock:
            image = self._image(self._resolve_id(ref))
            sizes = iter([self.layer_size(d) for d in image.diff_ids])
            items = [{"Comment": h.get("comment", ""), "Created": unix_seconds(h.get("created", ZERO_TIME)),
                      "CreatedBy": h.get("created_by", ""), "Id": "<missing>",
                      "Size": 0 if h.get("empty_layer") else next(sizes, 0), "Tags": None}
                     for h in image.config.get("history") or []]
            items.reverse()
            current: Image | None = image
            for item in items:
                if current is None:
                    break
                item["Id"], item["Tags"] = current.id, list(current.repo_tags) or None
                current = self._image(current.parent) if current.parent in self._images else None
            return items

    # --- use ---

    def lower_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layers, top first (overlayfs lowerdir order), unpacking each the
        first time any image or container needs it (under the store lock, so concurrent callers
        never unpack the same layer twice)."""
        return self.unpacked_layers(image.diff_ids)

    def unpacked_layers(self, diff_ids: list[str],
                        prepared: dict[str, layers.PreparedLayer] | None = None) -> list[Path]:
        """The diff dirs of a layer stack (bottom first in, top first out), each unpacked over
        the ones below it (directories a layer only implies look as they do below), now if not
        yet: a load does it at once, so a layer that cannot be unpacked is refused with its
        image, as dockerd does. A layer is unpacked once, by the first stack that needs it;
        one in `prepared` (received by `intake.receive`) is only finished."""
        prepared = prepared or {}
        with self._lock:
            dirs: list[Path] = []
            for diff_id in diff_ids:
                dirs.insert(0, self._stack_layer(diff_id, prepared.pop(diff_id, None), list(dirs)))
            return dirs

    def _stack_layer(self, diff_id: str, ready: layers.PreparedLayer | None,
                     below: list[Path]) -> Path:
        """One layer of a stack over `below` (top first), under the store lock: a prepared
        layer is finished, any other unpacked from its stored blob unless it already is."""
        if ready is None:
            return layers.unpack_layer(self.blobs / _hex(diff_id), self.layers / _hex(diff_id), below)
        path = ready.finish(below)
        self._arriving.pop(diff_id, None)
        if self._held[diff_id]:  # stored under a hold: see keeping_layers
            self._unclaimed.add(diff_id)
        return path

    def unpack_arriving(self, stack: list[str],
                        arriving: list[tuple[str, Future[layers.PreparedLayer | None]]]) -> list[Path]:
        """`unpacked_layers(stack)` for layers being received and prepared in other threads
        (`arriving`: diff_id and the future of its `intake.receive`): each is finished as soon
        as it and the ones below are there, the ones below not walked again. Whatever a failure
        leaves prepared is discarded."""
        prepared: dict[str, layers.PreparedLayer] = {}
        try:
            dirs: list[Path] = []
            for diff_id in stack:
                for future in [f for d, f in arriving if d == diff_id]:
                    ready = future.result()
                    if ready is not None:
                        prepared[diff_id] = ready
                with self._lock:
                    dirs.insert(0, self._stack_layer(diff_id, prepared.pop(diff_id, None), list(dirs)))
            return dirs
        finally:
            discard_arriving(arriving)
