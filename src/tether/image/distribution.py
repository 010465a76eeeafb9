"""Pull and push: images between the store and a registry, with Docker's progress messages.

Both run in worker threads and report through `emit(message)`, a callable taking the JSON
objects dockerd streams (`{"status": ..., "progressDetail": ..., "id": ...}`); the API layer
forwards them as they come. A pull is split in two so that what dockerd answers with an HTTP
error (unknown manifest, refused access, no route) is known before the stream starts:
`resolve_pull` fetches the manifest, `PullPlan.run` fetches the rest.

Layers are keyed by diff_id in the store: one already there is not fetched again ("Already
exists"), and a per-layer lock makes concurrent pulls of images sharing a layer download it once.
Pushes compress each layer with gzip at a fixed level, no name and a zero mtime, so the same layer
always becomes the same blob; before compressing, the blobs already known to hold a layer (pulled
or pushed before, `BlobMap`) are HEADed, so a layer the registry has costs one request.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from tether.image.layers import PreparedLayer
from tether.image.registry import (CONFIG_V2, INDEX_TYPES, LAYER_GZIP, MANIFEST_V2, Credentials,
                                   NoCredentials, RegistryClient, RegistryError, pick_platform,
                                   sha256_digest)
from tether.image.store import Image, ImageStore, diff_ids_of, go_arch
from tether.rules import refs
from tether.rules.errors import NotFound
from tether.rules.units import human_size
from tether.state import read_json, write_json_atomic

Emit = Callable[[dict[str, Any]], None]
PROGRESS_STEP = 512 * 1024
BAR_WIDTH = 50
GZIP_LEVEL = 6
DOWNLOADS = 3  # layers fetched at once, as dockerd's max-concurrent-downloads default
UPLOADS = 5  # layers pushed at once, as dockerd's max-concurrent-uploads default
MAX_CONFIG_BYTES = 8 << 20  # real configs are KBs; the ones with the longest histories, a few 100 KB


class KeyedLocks:
    """One lock per key while anyone holds or waits for it: serialises work on the same layer
    only, and forgets the key afterwards."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


_LAYER_LOCKS = KeyedLocks()
GZIP_TYPES = frozenset({LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"})


class BlobMap:
    """Which compressed blobs are known to hold a layer: diff_id -> [[digest, size], ...], kept
    in `<store>/distribution.json` (dockerd's "v2 metadata").

    A pull records each gzip layer blob it verified; a push records what it compressed. A push
    then HEADs those blobs before compressing anything, so a layer the registry already has
    (pulled from it, or pushed before) costs one request, and an image pulled from a registry
    goes back with the same layer digests. Only gzip blobs are recorded: a Docker manifest
    names its layers as gzip.
    """

    _lock = threading.Lock()

    def __init__(self, store: ImageStore) -> None:
        self.path = store.root / "distribution.json"

    def _load(self) -> dict[str, list[list[Any]]]:
        try:
            return dict(read_json(self.path))
        except FileNotFoundError:
            return {}

    def blobs(self, diff_id: str) -> list[tuple[str, int]]:
        with self._lock:
            return [(str(digest), int(size)) for digest, size in self._load().get(diff_id, [])]

    def remember(self, diff_id: str, digest: str, size: int) -> None:
        with self._lock:
            known = self._load()
            entries = known.setdefault(diff_id, [])
            if [digest, size] not in entries:
                entries.append([digest, size])
                write_json_atomic(self.path, known)


def progress_bar(current: int, total: int) -> str:
    """Docker's JSONProgress text: `[=====>     ]  1.2MB/3.4MB`."""
    if total <= 0:
        return human_size(current)
    filled = min(BAR_WIDTH, current * 100 // total // 2)
    return f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] {human_size(current):>8}/{human_size(total)}"


def message(status: str, ident: str | None = None, current: int | None = None,
            total: int | None = None) -> dict[str, Any]:
    """One progress message as dockerd's jsonmessage writes it."""
    msg: dict[str, Any] = {"status": status}
    if current is not None:
        msg["progressDetail"] = {"current": current, "total": total or 0}
        msg["progress"] = progress_bar(current, total or 0)
    elif ident is not None:
        msg["progressDetail"] = {}
    if ident is not None:
        msg["id"] = ident
    return msg


def short(digest: str) -> str:
    return digest.split(":", 1)[1][:12]


class Throttled:
    """A progress callback that emits a message every PROGRESS_STEP bytes and at the end."""

    def __init__(self, emit: Emit, status: str, ident: str, total: int) -> None:
        self.emit, self.status, self.ident, self.total = emit, status, ident, total
        self._last = -1

    def __call__(self, done: int) -> None:
        if done >= self._last + PROGRESS_STEP or (done == self.total and done != self._last):
            self.emit(message(self.status, self.ident, done, self.total))
            self._last = done


def fetch_config(client: RegistryClient, desc: dict[str, Any]) -> bytes:
    """A config blob, verified; one over MAX_CONFIG_BYTES is refused before it is read into
    memory (it went to disk on the way): a registry decides how much it sends."""
    with tempfile.SpooledTemporaryFile(max_size=4 << 20) as out:
        client.fetch_blob(desc["digest"], out)  # type: ignore[arg-type]
        if out.tell() > MAX_CONFIG_BYTES:
            raise RegistryError(f"image config {desc['digest']} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
        out.seek(0)
        return out.read()


def _client(ref: refs.Reference, credentials: Credentials | None, insecure: Iterable[str],
            push: bool = False) -> RegistryClient:
    return RegistryClient(ref.domain, ref.path, credentials, insecure, push=push)


# --- pull ---------------------------------------------------------------------------------

def pull_reference(name: str, tag: str = "") -> refs.Reference:
    """`fromImage` and `tag` as POST /images/create takes them: the tag may also be a digest,
    and a name with neither means every tag of the repository (`docker pull -a`)."""
    ref = refs.parse_normalized(name)
    if tag:
        if tag.startswith("sha256:"):
            return refs.Reference(ref.domain, ref.path, None, tag)
        ref = ref.with_tag(tag)
    return ref


@dataclass
class PullPlan:
    """A resolved pull: the manifest is known, the config and layers are still to fetch."""

    ref: refs.Reference
    client: RegistryClient
    manifest: dict[str, Any]
    digest: str

    @property
    def tag_or_digest(self) -> str:
        return self.ref.tag or self.ref.digest or refs.DEFAULT_TAG

    def run(self, store: ImageStore, emit: Emit) -> bool:
        """Fetch config and layers, store the image, tag it; dockerd's messages on the way.
        Whether anything changed (dockerd's "Downloaded newer image" against "up to date")."""
        emit(message(f"Pulling from {self.ref.path}", self.tag_or_digest))
        config_bytes = fetch_config(self.client, self.manifest["config"])
        diff_ids = diff_ids_of(config_bytes)
        layer_descs = self.manifest.get("layers") or []
        if len(diff_ids) != len(layer_descs):
            raise RegistryError("the manifest's layers do not match the config's diff_ids")
        tag = str(self.ref) if self.ref.tag else None
        existed = self._already_there(store, config_bytes, tag)
        repo_digest = str(refs.Reference(self.ref.domain, self.ref.path, None, self.digest))
        with store.keeping_layers(diff_ids):
            if not self._has_image(store, config_bytes):
                self._layers(store, list(zip(layer_descs, diff_ids, strict=True)), emit)
            store.add_image_from_layers(config_bytes, tag, repo_digest)
        emit(message(f"Digest: {self.digest}"))
        return not existed

    def _layers(self, store: ImageStore, layers: list[tuple[dict[str, Any], str]], emit: Emit) -> None:
        """The layers of an image not stored yet: those whose diff_id is stored are skipped."""
        pending = []
        for desc, diff_id in layers:
            if store.has_layer(diff_id):
                emit(message("Already exists", short(desc["digest"])))
            else:
                emit(message("Pulling fs layer", short(desc["digest"])))
                pending.append((desc, diff_id))
        with ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="pull") as pool:
            # Unpacked in the pull, as dockerd does, not at the first run: each layer by its
            # download thread as it arrives, finished bottom up.
            store.unpack_arriving([diff_id for _, diff_id in layers],
                                  [(diff_id, pool.submit(self._layer, store, desc, diff_id, emit))
                                   for desc, diff_id in pending])

    @staticmethod
    def _has_image(store: ImageStore, config_bytes: bytes) -> bool:
        """An image with this config is stored: dockerd then skips its layers altogether."""
        try:
            store.resolve(sha256_digest(config_bytes))
        except NotFound:
            return False
        return True

    def _already_there(self, store: ImageStore, config_bytes: bytes, tag: str | None) -> bool:
        """dockerd's "Image is up to date": the tag (or, by digest, the image) is already there."""
        try:
            return store.resolve(tag or sha256_digest(config_bytes)).id == sha256_digest(config_bytes)
        except NotFound:
            return False

    def _layer(self, store: ImageStore, desc: dict[str, Any], diff_id: str, emit: Emit) -> PreparedLayer | None:
        """Download one layer (once, however many pulls want it), verify, store, and unpack it
        as far as it can be without the layers below (None when another pull stored it)."""
        ident = short(desc["digest"])
        with _LAYER_LOCKS.hold(diff_id):
            shared = store.arriving_layer(diff_id)
            if shared is not None or store.has_layer(diff_id):
                emit(message("Download complete", ident))
                emit(message("Pull complete", ident))
                return shared
            size = int(desc.get("size", 0))
            # kept as sent, decompressed, hashed and unpacked as it arrives; the blob's digest
            # is checked at its end, before the store keeps anything
            with self.client.open_blob(desc["digest"], Throttled(emit, "Downloading", ident, size)) as blob:
                try:
                    ready = store.receive_layer(blob, diff_id, desc)  # type: ignore[arg-type]
                except Exception:
                    blob.drain()  # a registry sending wrong bytes is named as such
                    raise
            emit(message("Verifying Checksum", ident))
            emit(message("Download complete", ident))
            emit(message("Extracting", ident, 0, size))
            emit(message("Extracting", ident, size, size))
        if desc.get("mediaType") in GZIP_TYPES:
            BlobMap(store).remember(diff_id, desc["digest"], int(desc.get("size", 0)))
        emit(message("Pull complete", ident))
        return ready


@dataclass
class Pull:
    """A resolved pull of `ref`: one tag or digest, or every tag of a repository."""

    ref: refs.Reference
    plans: list[PullPlan]

    def run(self, store: ImageStore, emit: Emit) -> None:
        changed = False
        for plan in self.plans:
            changed = plan.run(store, emit) or changed
        state = "Downloaded newer image for" if changed else "Image is up to date for"
        emit(message(f"Status: {state} {self.ref}"))


def resolve_pull(ref: refs.Reference, credentials: Credentials | None = None,
                 insecure: Iterable[str] = ()) -> Pull:
    """The manifests to pull: `ref`'s, or, for a bare name, every tag's."""
    client = _client(ref, credentials, insecure)
    if ref.tag or ref.digest:
        return Pull(ref, [_resolve_one(client, ref)])
    try:
        tags = client.list_tags()
    except RegistryError as exc:
        raise _pull_error(ref, exc) from exc
    return Pull(ref, [_resolve_one(client, ref.with_tag(tag)) for tag in tags])


def _resolve_one(client: RegistryClient, ref: refs.Reference) -> PullPlan:
    """Fetch the manifest for `ref`, through an index to this platform's image (else amd64)."""
    try:
        data, media_type, digest = client.get_manifest(ref.digest or ref.tag or refs.DEFAULT_TAG)
    except RegistryError as exc:
        raise _pull_error(ref, exc) from exc
    manifest = json.loads(data)
    if media_type in INDEX_TYPES or "manifests" in manifest:
        chosen = pick_platform(manifest, "linux", go_arch())
        sub, _, _ = client.get_manifest(chosen["digest"])
        manifest = json.loads(sub)
    if "config" not in manifest:
        raise RegistryError(f"unsupported manifest format for {ref}: {media_type}")
    return PullPlan(ref, client, manifest, digest)


def _pull_error(ref: refs.Reference, exc: RegistryError) -> RegistryError:
    """dockerd's words when a registry refuses a repository: "pull access denied"."""
    if {"UNAUTHORIZED", "DENIED", "NAME_UNKNOWN"} & set(exc.codes):
        return RegistryError(f"pull access denied for {ref.familiar_name}, repository does not exist or "
                             f"may require 'docker login': {exc.message.split(': ', 1)[-1]}", 404)
    return exc


# --- push ---------------------------------------------------------------------------------

@dataclass
class PushPlan:
    """What one push sends: the repository and the tags (name:tag) it pushes there."""

    ref: refs.Reference
    tags: list[str]
    client: RegistryClient

    def run(self, store: ImageStore, emit: Emit) -> list[dict[str, Any]]:
        """Push every tag; the `aux` records (Tag, Digest, Size) dockerd ends each tag with."""
        emit(message(f"The push refers to repository [{self.ref.name}]"))
        results = []
        try:
            for tag in self.tags:
                image = store.resolve(tag)
                results.append(self._push_image(store, image, refs.parse_normalized(tag).tag or refs.DEFAULT_TAG,
                                                emit))
        except NoCredentials as exc:
            raise RegistryError(exc.bare, exc.status) from exc
        return results

    def _push_image(self, store: ImageStore, image: Image, tag: str, emit: Emit) -> dict[str, Any]:
        diff_ids = image.diff_ids
        for diff_id in reversed(diff_ids):
            emit(message("Preparing", short(diff_id)))
        # several layers compressed and uploaded at once (zlib runs outside the GIL), as
        # dockerd's max-concurrent-uploads; the manifest keeps the layers' order
        with ThreadPoolExecutor(UPLOADS, thread_name_prefix="push") as pool:
            layer_descs = list(pool.map(lambda diff_id: self._push_layer(store, diff_id, emit), diff_ids))
        config_bytes = store.config_bytes(image)
        config_digest = sha256_digest(config_bytes)
        if not self.client.has_blob(config_digest):
            with tempfile.TemporaryFile() as src:
                src.write(config_bytes)
                src.seek(0)
                self.client.upload_blob(config_digest, len(config_bytes), src)  # type: ignore[arg-type]
        manifest = schema2_manifest({"mediaType": CONFIG_V2, "size": len(config_bytes),
                                     "digest": config_digest}, layer_descs)
        digest = self.client.put_manifest(tag, manifest, MANIFEST_V2)
        store.add_repo_digest(image.id, str(refs.Reference(self.ref.domain, self.ref.path, None, digest)))
        aux = {"Tag": tag, "Digest": digest, "Size": len(manifest)}
        emit(message(f"{tag}: digest: {digest} size: {len(manifest)}"))
        emit({"progressDetail": {}, "aux": aux})
        return aux

    def _push_layer(self, store: ImageStore, diff_id: str, emit: Emit) -> dict[str, Any]:
        """HEAD the blobs known to hold the layer first; then send the gzip blob it was pulled
        as, as it is (the registry's digest, as dockerd does), or else compress and upload."""
        ident = short(diff_id)
        blob_map = BlobMap(store)
        for digest, size in blob_map.blobs(diff_id):
            if self.client.has_blob(digest):
                emit(message("Layer already exists", ident))
                return {"mediaType": LAYER_GZIP, "size": size, "digest": digest}
        pulled = store.pulled_blob(diff_id)
        if pulled is not None and pulled[1].get("mediaType") in GZIP_TYPES:
            path, desc = pulled
            digest, size = str(desc["digest"]), int(desc["size"])
            with open(path, "rb") as blob:
                self._upload(blob, digest, size, ident, emit)  # type: ignore[arg-type]
        else:
            with tempfile.TemporaryFile(dir=store.root) as blob, store.layer_tar(diff_id) as tar:
                digest, size = compress_layer(tar, blob)  # type: ignore[arg-type]
                blob.seek(0)
                self._upload(blob, digest, size, ident, emit)  # type: ignore[arg-type]
        blob_map.remember(diff_id, digest, size)
        return {"mediaType": LAYER_GZIP, "size": size, "digest": digest}

    def _upload(self, blob: BinaryIO, digest: str, size: int, ident: str, emit: Emit) -> None:
        """Upload a layer blob unless the registry has it (dockerd's messages either way)."""
        if self.client.has_blob(digest):
            emit(message("Layer already exists", ident))
            return
        self.client.upload_blob(digest, size, blob, Throttled(emit, "Pushing", ident, size))
        emit(message("Pushed", ident))


def compress_layer(src: BinaryIO, out: BinaryIO) -> tuple[str, int]:
    """gzip a layer tar read from `src` into `out` deterministically (fixed level, no name,
    mtime 0); the compressed blob's digest and size."""
    hasher = hashlib.sha256()
    counter = _HashingWriter(out, hasher)
    with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=counter,  # type: ignore[arg-type]
                       mtime=0) as gz:
        while chunk := src.read(1 << 20):
            gz.write(chunk)
    return "sha256:" + hasher.hexdigest(), counter.size


class _HashingWriter:
    """Writes through to `out`, hashing and counting what passes."""

    def __init__(self, out: BinaryIO, hasher: Any) -> None:
        self.out, self.hasher, self.size = out, hasher, 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def schema2_manifest(config: dict[str, Any], layers: list[dict[str, Any]]) -> bytes:
    """A Docker image manifest v2 schema 2, laid out as Docker's (3-space indent) marshals it."""
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2, "config": config, "layers": layers}
    return json.dumps(manifest, indent=3).encode()


def resolve_push(store: ImageStore, name: str, tag: str = "", credentials: Credentials | None = None,
                 insecure: Iterable[str] = ()) -> PushPlan:
    """The tags a push sends: `name:tag`, or every tag of the repository when no tag is given;
    dockerd's error when there is none."""
    ref = refs.parse_normalized(name)
    if tag:
        ref = ref.with_tag(tag)
    if ref.tag:
        tags = [str(ref)] if _has_tag(store, str(ref)) else []
    else:
        tags = sorted(t for image in store.list() for t in image.repo_tags
                      if refs.parse_normalized(t).name == ref.name)
    if not tags:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
    repo = refs.Reference(ref.domain, ref.path)
    return PushPlan(repo, tags, _client(repo, credentials, insecure, push=True))


def _has_tag(store: ImageStore, tag: str) -> bool:
    try:
        store.resolve(tag)
    except NotFound:
        return False
    return True



# --- inspect (GET /distribution/{name}/json) ------------------------------------------------

_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")


def _platform(source: dict[str, Any]) -> dict[str, Any]:
    """An OCI platform as Go's v1.Platform encodes it: architecture and os always, the rest
    only when set."""
    out = {"architecture": str(source.get("architecture") or ""), "os": str(source.get("os") or "")}
    for key in _PLATFORM_KEYS[2:]:
        if source.get(key):
            out[key] = source[key]
    return out


def inspect(ref: refs.Reference, credentials: Credentials | None = None,
            insecure: Iterable[str] = ()) -> dict[str, Any]:
    """`docker manifest`-style registry inspect, as dockerd answers it: the descriptor of the
    manifest (or index) the reference names, and its platforms: an index's entries', or those
    read from a single image's config (left out when it names neither os nor architecture)."""
    client = _client(ref, credentials, insecure)
    try:
        data, media_type, digest = client.get_manifest(ref.digest or ref.tag or refs.DEFAULT_TAG)
    except RegistryError as exc:
        raise _pull_error(ref, exc) from exc
    manifest = json.loads(data)
    platforms: list[dict[str, Any]] = []
    if media_type in INDEX_TYPES or "manifests" in manifest:
        platforms = [_platform(entry.get("platform") or {}) for entry in manifest["manifests"]]
    elif isinstance(manifest.get("config"), dict):
        config = json.loads(fetch_config(client, manifest["config"]))
        if config.get("os") or config.get("architecture"):
            platforms = [_platform(config)]
    return {"Descriptor": {"mediaType": media_type, "digest": digest, "size": len(data)},
            "Platforms": platforms}
