"""The content-addressed image store: config and layer blobs, unpacked layers, tags.

Layout under `root` (the daemon passes `<data-root>/image`):
- `blobs/sha256/<hex>`: image configs (the image ID is the sha256 of these exact bytes) and layer
  tars, stored uncompressed and named by their diff_id.
- `layers/<diffid-hex>/diff/`: each layer unpacked once, lazily, shared as an overlay lower dir.
- `images.json`: the images that exist, with what is not in their config (size, last tag time).
- `repositories.json`: every tag, in Docker's familiar form: {"busybox:latest": "sha256:..."}.

Blobs are written before the records that name them, and removed after, so a crash leaves at worst
unreferenced blobs and `.tmp-` entries, which start-up removes. One lock serialises mutations: the
daemon calls the slow parts from worker threads.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable

from tether.errors import BadRequest, Conflict, NotFound
from tether.image import layers, refs
from tether.image.changes import apply_changes
from tether.state import read_json, write_json_atomic

ContainerUsers = Callable[[str], list[tuple[str, bool]]]
ZERO_TIME = "0001-01-01T00:00:00Z"
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


@dataclass
class Image:
    """A snapshot of one image: its config and what the store knows about it."""

    id: str
    config: dict[str, Any]
    repo_tags: list[str]
    size: int
    last_tag_time: str
    layer_root: Path

    @property
    def short_id(self) -> str:
        return _hex(self.id)[:12]

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
            "Id": self.id, "RepoTags": list(self.repo_tags), "RepoDigests": [], "Parent": "",
            "Comment": cfg.get("comment", ""), "Created": cfg.get("created", ZERO_TIME), "Container": "",
            "ContainerConfig": cfg.get("container_config") or container_config(),
            "DockerVersion": cfg.get("docker_version", ""), "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or container_config(), "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""), "Size": self.size, "VirtualSize": self.size,
            "GraphDriver": self._graph_driver(),
            "RootFS": {"Type": "layers", "Layers": self.diff_ids},
            "Metadata": {"LastTagTime": self.last_tag_time},
        }

    def summary(self) -> dict[str, Any]:
        """One item of GET /images/json."""
        return {
            "Containers": -1, "Created": unix_seconds(self.config.get("created", ZERO_TIME)),
            "Id": self.id, "Labels": (self.config.get("config") or {}).get("Labels"), "ParentId": "",
            "RepoDigests": [], "RepoTags": list(self.repo_tags), "SharedSize": -1, "Size": self.size,
            "VirtualSize": self.size,
        }


@dataclass
class _StagedLayer:
    """A layer tar written to a temporary blob, hashed and measured, not yet committed."""

    diff_id: str
    path: Path
    size: int


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
        self._lock = threading.RLock()
        self._tags: dict[str, str] = self._load("repositories.json")
        self._images: dict[str, dict[str, Any]] = self._load("images.json")
        self._configs: dict[str, dict[str, Any]] = {}
        self._layer_sizes: dict[str, int] = {}
        self._collect_garbage()

    # --- records ---

    def _load(self, name: str) -> dict[str, Any]:
        try:
            return dict(read_json(self.root / name))
        except FileNotFoundError:
            return {}

    def _save(self) -> None:
        write_json_atomic(self.root / "images.json", self._images)
        write_json_atomic(self.root / "repositories.json", self._tags)

    def _collect_garbage(self) -> None:
        """Remove what a crash may have left: temporaries, and blobs no image names.

        A layer blob whose layer is unpacked is kept: a container of a force-removed image may
        still use that layer as its lower dir.
        """
        for tmp in [*self.blobs.glob(".tmp-*"), *self.layers.glob(".tmp-*")]:
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        wanted = set(self._images)
        for image_id in self._images:
            wanted.update(self._config(image_id)["rootfs"]["diff_ids"])
        for blob in self.blobs.iterdir():
            if f"sha256:{blob.name}" not in wanted and not (self.layers / blob.name).exists():
                blob.unlink()

    def _config(self, image_id: str) -> dict[str, Any]:
        if image_id not in self._configs:
            self._configs[image_id] = json.loads((self.blobs / _hex(image_id)).read_bytes())
        return self._configs[image_id]

    def layer_size(self, diff_id: str) -> int:
        """A layer's size as its images count it (for `system df`): measured from its blob once."""
        if diff_id not in self._layer_sizes:
            self._layer_sizes[diff_id] = layers.tar_size(self.blobs / _hex(diff_id))
        return self._layer_sizes[diff_id]

    def _tags_of(self, image_id: str) -> list[str]:
        return sorted((t for t, i in self._tags.items() if i == image_id), key=refs.sort_key)

    def _image(self, image_id: str) -> Image:
        meta = self._images[image_id]
        return Image(image_id, self._config(image_id), self._tags_of(image_id), meta["size"],
                     meta.get("last_tag_time", ZERO_TIME), self.layers)

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

    def remove(self, ref: str, force: bool, users: ContainerUsers) -> list[dict[str, str]]:
        """DELETE /images/{ref}: untag, and delete the image once nothing names it.

        `users(image_id)` lists the containers made from the image as (id, running).
        """
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
                return self._delete(image_id, containers, force, records, quiet=True)
            if len(self._tags_of(image_id)) == 1:
                conflict = self._conflict(image_id, containers, soft=not force, references=False)
                if conflict is not None:
                    raise Conflict(conflict.message)
                self._untag(self._tags_of(image_id)[0], records)
            return self._delete(image_id, containers, force, records, quiet=False)

    @staticmethod
    def _is_id_prefix(image_id: str, ref: str) -> bool:
        return image_id.startswith(ref) or _hex(image_id).startswith(ref)

    def _untag(self, tag: str, records: list[dict[str, str]]) -> None:
        del self._tags[tag]
        self._save()
        records.append({"Untagged": tag})

    def _conflict(self, image_id: str, containers: list[tuple[str, bool]], soft: bool,
                  references: bool) -> _DeleteConflict | None:
        """The first reason not to delete, in Docker's order: running container (cannot be
        forced), then, unless forcing, tags and stopped containers."""
        short = _hex(image_id)[:12]
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
                records: list[dict[str, str]], quiet: bool) -> list[dict[str, str]]:
        """imageDeleteHelper: after the untag that made an image dangling (`quiet`), a conflict
        caused by a container just keeps the image instead of failing."""
        conflict = self._conflict(image_id, containers, soft=not force, references=not force)
        if conflict is not None:
            if quiet and conflict.used:
                return records
            raise Conflict(conflict.message)
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
        return records

    def _release_layers(self, diff_ids: list[str]) -> list[str]:
        """Delete the layers no remaining image uses; their chain IDs, top first, as Docker lists."""
        in_use = {d for i in self._images for d in self._config(i)["rootfs"]["diff_ids"]}
        released = []
        for diff_id, chain in reversed(list(zip(diff_ids, chain_ids(diff_ids), strict=True))):
            if diff_id in in_use:
                continue
            shutil.rmtree(self.layers / _hex(diff_id), ignore_errors=True)
            (self.blobs / _hex(diff_id)).unlink(missing_ok=True)
            released.append(chain)
        return released

    # --- creation ---

    def _stage_layer(self, fileobj: BinaryIO) -> _StagedLayer:
        """Write a (possibly compressed) layer tar uncompressed to a temporary blob while hashing."""
        tmp = self.blobs / f".tmp-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        stream = layers.decompressed(fileobj)
        try:
            with open(tmp, "wb") as out:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return _StagedLayer(f"sha256:{digest.hexdigest()}", tmp, layers.tar_size(tmp))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _commit(self, config_bytes: bytes, staged: list[_StagedLayer], repo_tag: str | None) -> Image:
        """Move staged layers into place and record the image, all under the lock so a concurrent
        removal cannot collect a layer between the two."""
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        with self._lock:
            for layer in staged:
                os.replace(layer.path, self.blobs / _hex(layer.diff_id))
            config_path = self.blobs / _hex(image_id)
            if not config_path.exists():
                tmp = self.blobs / f".tmp-{secrets.token_hex(8)}"
                tmp.write_bytes(config_bytes)
                os.replace(tmp, config_path)
            self._images.setdefault(image_id, {"size": sum(layer.size for layer in staged),
                                               "last_tag_time": ZERO_TIME})
            if repo_tag is not None:
                self._set_tag(repo_tag, image_id)
            self._save()
            return self._image(image_id)

    def add_image(self, config_bytes: bytes, layer_tars: list[BinaryIO], repo_tag: str | None = None) -> Image:
        """Store an image from its config bytes and its layer tars, bottom first (load, pull,
        build); the tars must hash to the config's diff_ids."""
        tag = refs.normalize_tag(repo_tag) if repo_tag else None
        expected = json.loads(config_bytes)["rootfs"]["diff_ids"]
        staged = [self._stage_layer(f) for f in layer_tars]
        try:
            if [s.diff_id for s in staged] != expected:
                raise BadRequest("layer tars do not match the config's rootfs.diff_ids")
            return self._commit(config_bytes, staged, tag)
        finally:
            for layer in staged:
                layer.path.unlink(missing_ok=True)

    def import_tar(self, fileobj: BinaryIO, repo_tag: str | None, changes: list[str], message: str,
                   created: str | None = None) -> Image:
        """POST /images/create?fromSrc=-: one layer from a plain or compressed tar, `--change`s
        applied, history comment `message` or Docker's "Imported from -".

        `created` (RFC 3339) defaults to now; a fixed value makes the image ID a function of the
        input alone, which the offline busybox bootstrap relies on.
        """
        tag = refs.normalize_tag(repo_tag) if repo_tag else None
        config = container_config(apply_changes(container_config(), changes))
        layer = self._stage_layer(fileobj)
        try:
            config_bytes = self._import_config(config, layer.diff_id, message, created)
            return self._commit(config_bytes, [layer], tag)
        finally:
            layer.path.unlink(missing_ok=True)

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

    # --- use ---

    def lower_dirs(self, image: Image) -> list[Path]:
        """The image's unpacked layers, top first (overlayfs lowerdir order), unpacking each the
        first time any image or container needs it (under the store lock, so concurrent callers
        never unpack the same layer twice)."""
        with self._lock:
            return [layers.unpack_layer(self.blobs / _hex(d), self.layers / _hex(d))
                    for d in reversed(image.diff_ids)]
