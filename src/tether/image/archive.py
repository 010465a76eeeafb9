"""Images and filesystems as tar files: `docker save`, `docker load`, `docker export`, and the
download half of `docker import URL`.

`save` writes what Docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`, every
blob under `blobs/sha256/`) that is also a legacy archive (`manifest.json` and `repositories`
naming the same blobs), so both Docker 20.10, which reads only `manifest.json`, and OCI tools
load it. Layers go out as uncompressed tars (a pulled layer's blob decompressed, any other's
tar put back together from its unpacked files, both checked against the diff ID: layertar.py)
and the config as its exact bytes, so the image ID survives the trip.

`load` reads the legacy layout (Docker 20.10's `<id>/layer.tar` directories or Docker 25's
blobs, through `manifest.json`) and, when there is no `manifest.json`, a plain OCI layout
(`index.json`, possibly nested indexes, gzip or zstd layers, as umoci and skopeo write). The
archive is only read, never unpacked, so names inside it cannot point anywhere on the host: a
path is a key to look up. Layers already in the store are not stored again, as dockerd skips
layers it has, and every layer is unpacked before the image is recorded, so that a layer that
cannot be unpacked safely fails the load (as on Docker, which unpacks as it loads) instead of the
first `run`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import stat
import tarfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from tether.image.distribution import Emit, Throttled
from tether.image.layers import PreparedLayer
from tether.image.registry import INDEX_TYPES, OCI_INDEX, OCI_MANIFEST, pick_platform
from tether.image.store import (Image, ImageStore, chain_ids, diff_ids_of, discard_arriving, go_arch,
                                 unix_seconds)
from tether.rules import refs
from tether.rules.errors import BadRequest, NotFound, load_tar_error
from tether.runtime import rootfd
from tether.runtime.rootfd import Root

MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.json"
LAYOUT_FILE = "oci-layout"
REPOSITORIES_FILE = "repositories"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_CAPABILITY_XATTR = "security.capability"
_MAX_LINKS = 16
UNPACKS = 3  # layers of a load read and unpacked at once


def _json_bytes(obj: Any) -> bytes:
    """Go's json.Encoder output: compact, with a trailing newline."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


# ---- save --------------------------------------------------------------------------------

@dataclass
class SaveItem:
    """One image going into an archive and the tags (familiar `repo:tag`) it goes with."""

    image: Image
    tags: list[str] = field(default_factory=list)


def select(store: ImageStore, names: list[str]) -> list[SaveItem]:
    """Docker's tarexporter.parseNames: an ID saves the image untagged, `repo:tag` that tag,
    a bare `repo` every tag of that repository (or, with none, an image ID prefix)."""
    items: dict[str, SaveItem] = {}

    def add(image: Image, tag: str | None) -> None:
        if not image.diff_ids:
            raise BadRequest("empty export - not implemented")
        item = items.setdefault(image.id, SaveItem(image))
        if tag is not None and tag not in item.tags:
            item.tags.append(tag)

    for name in names:
        parsed = refs.parse_any(name)
        if isinstance(parsed, str) or parsed.digest is not None:
            add(store.resolve(name), None)
        elif parsed.tag is None:
            tagged = [(image, tag) for image in store.list() for tag in image.repo_tags
                      if refs.parse_normalized(tag).name == parsed.name]
            for image, tag in sorted(tagged, key=lambda pair: refs.sort_key(pair[1])):
                add(image, tag)
            if not tagged:
                add(_search(store, name), None)
        else:
            tag = str(parsed)
            image = next((i for i in store.list() if tag in i.repo_tags), None)
            if image is None:
                raise NotFound("reference does not exist")
            add(image, tag)
    return list(items.values())


def _search(store: ImageStore, name: str) -> Image:
    """An image by ID prefix, with dockerd's `No such image: <name>` when there is none."""
    try:
        return store.resolve(name)
    except NotFound:
        raise NotFound(f"No such image: {name}") from None


def oci_manifest(config_bytes: bytes, layers: list[tuple[str, int]]) -> bytes:
    """The OCI image manifest of an image whose layers are uncompressed tars (digest, size)."""
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": size} for d, size in layers],
    }, separators=(",", ":")).encode()


def index_entries(manifest_bytes: bytes, tags: list[str]) -> list[dict[str, Any]]:
    """index.json descriptors for one image: one per tag, named as Docker 25 names them, or a
    single unnamed one for an untagged image."""
    base = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + hashlib.sha256(manifest_bytes).hexdigest(),
            "size": len(manifest_bytes)}
    if not tags:
        return [base]
    entries = []
    for tag in tags:
        ref = refs.parse_normalized(tag)
        entries.append({**base, "annotations": {IMAGE_NAME_ANNOTATION: ref.full(),
                                                REF_NAME_ANNOTATION: ref.tag or refs.DEFAULT_TAG}})
    return entries


def save(store: ImageStore, items: list[SaveItem], out: BinaryIO) -> None:
    """Write the archive of `items` to `out` as a tar stream (nothing staged on disk)."""
    manifest: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs", "blobs/sha256"):
            tar.addfile(_dir_info(name))
        for item in items:
            mtime = _created_seconds(item.image)
            layers: list[tuple[str, int]] = []
            for diff_id in item.image.diff_ids:
                size = store.layer_tar_size(diff_id)
                layers.append((diff_id, size))
                if diff_id not in written:
                    with store.layer_tar(diff_id) as blob:
                        tar.addfile(_file_info(f"blobs/sha256/{_hex(diff_id)}", size, mtime), blob)
                    written.add(diff_id)
            config = store.config_bytes(item.image)
            oci = oci_manifest(config, layers)
            for data in (config, oci):
                digest = hashlib.sha256(data).hexdigest()
                if f"sha256:{digest}" not in written:
                    _add_bytes(tar, f"blobs/sha256/{digest}", data, mtime)
                    written.add(f"sha256:{digest}")
            index.extend(index_entries(oci, item.tags))
            for tag in item.tags:
                ref = refs.parse_normalized(tag)
                repositories.setdefault(ref.familiar_name, {})[ref.tag or refs.DEFAULT_TAG] = \
                    _hex(item.image.diff_ids[-1])
            manifest.append({"Config": f"blobs/sha256/{_hex(item.image.id)}", "RepoTags": item.tags or None,
                             "Layers": [f"blobs/sha256/{_hex(d)}" for d in item.image.diff_ids]})
        _add_bytes(tar, INDEX_FILE, _json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                 "manifests": index}), 0)
        _add_bytes(tar, MANIFEST_FILE, _json_bytes(manifest), 0)
        _add_bytes(tar, LAYOUT_FILE, _json_bytes({"imageLayoutVersion": "1.0.0"}), 0)
        if repositories:
            _add_bytes(tar, REPOSITORIES_FILE, _json_bytes(repositories), 0)


def _created_seconds(image: Image) -> int:
    """The image's creation time, which Docker gives its blobs as mtime (0 when unreadable)."""
    try:
        return unix_seconds(str(image.config.get("created") or ""))
    except ValueError:
        return 0


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _file_info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, mtime
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    tar.addfile(_file_info(name, len(data), mtime), io.BytesIO(data))


# ---- load --------------------------------------------------------------------------------

@dataclass
class ArchivedImage:
    """One image found in an archive: its config bytes, its layer members bottom first, and
    the tags (familiar form) it is to get."""

    config: bytes
    layers: list[str]
    tags: list[str]


class NotATar(BadRequest):
    """The body is no tar (after decompression); dockerd reports that in its 200 stream."""


class Archive:
    """Read access to a `docker save` tar by normalised member name (`./a//b` is `a/b`)."""

    def __init__(self, fileobj: BinaryIO) -> None:
        try:
            self.tar = tarfile.open(fileobj=fileobj, mode="r:*")
            self.members = {_normalise(m.name): m for m in self.tar.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise NotATar(load_tar_error(str(exc))) from exc
        self._fd = _plain_fd(fileobj) if self.tar.fileobj is fileobj else None

    def reader(self, name: str) -> BinaryIO | None:
        """A reader of the file `name` of its own (pread on the archive's fd), so that layers
        can be read and unpacked in several threads at once; None when the archive is not a
        plain file on disk or the member is not a plain regular file."""
        member = self.members.get(_normalise(name))
        if self._fd is None or member is None or not member.isreg() or member.issparse():
            return None
        return io.BufferedReader(_PreadReader(self._fd, member.offset_data, member.size), 1 << 20)

    def has(self, name: str) -> bool:
        return _normalise(name) in self.members

    def open(self, name: str) -> BinaryIO:
        member = self.members.get(_normalise(name))
        source = self.tar.extractfile(member) if member is not None else None
        if source is None:
            raise BadRequest(f"invalid archive: {name} is missing or not a file")
        return source  # type: ignore[return-value]

    def size(self, name: str) -> int:
        """The size of the file `name` holds, through the links Docker 20.10 writes for a
        layer shared by two images (`../<id>/layer.tar`)."""
        member = self.members.get(_normalise(name))
        for _ in range(_MAX_LINKS):
            if member is None or not (member.issym() or member.islnk()):
                break
            base = posixpath.dirname(member.name) if member.issym() else ""
            member = self.members.get(_normalise(posixpath.join(base, member.linkname)))
        if member is None or not member.isreg():
            raise BadRequest(f"invalid archive: {name} is missing or not a file")
        return member.size

    def read(self, name: str) -> bytes:
        return self.open(name).read()

    def blob(self, digest: str) -> bytes:
        """A small blob (manifest, index, config), its digest checked."""
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256" or not hexpart:
            raise BadRequest(f"invalid archive: unsupported digest {digest!r}")
        data = self.read(f"blobs/sha256/{hexpart}")
        if hashlib.sha256(data).hexdigest() != hexpart:
            raise BadRequest(f"invalid archive: blob {digest} does not match its digest")
        return data


def _plain_fd(fileobj: BinaryIO) -> int | None:
    """The fd of the file the archive is (a spooled request body still in memory is written
    out to its temporary file first), None for an in-memory stream."""
    try:
        return fileobj.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


class _PreadReader(io.RawIOBase):
    """`size` bytes at `offset` of the fd, read with pread (no shared file position)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._offset, self._left = fd, offset, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = os.pread(self._fd, min(len(buffer), self._left), self._offset)
        if not data and self._left:
            raise BadRequest("invalid archive: a layer is cut short")
        buffer[:len(data)] = data
        self._offset += len(data)
        self._left -= len(data)
        return len(data)


def _normalise(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def read_images(archive: Archive) -> list[ArchivedImage]:
    """The images an archive holds, from `manifest.json` when present, else from `index.json`;
    a file of the wrong shape is a 400, never a crash."""
    try:
        if archive.has(MANIFEST_FILE):
            return _from_manifest(archive)
        if archive.has(INDEX_FILE):
            images: list[ArchivedImage] = []
            for desc in json.loads(archive.read(INDEX_FILE)).get("manifests") or []:
                images.extend(_from_descriptor(archive, desc, None))
            return _merge_tags(images)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest(f"invalid archive: malformed manifest: {exc}") from exc
    raise BadRequest("invalid archive: neither manifest.json nor index.json found "
                     "(not a docker save or OCI layout archive)")


def _from_manifest(archive: Archive) -> list[ArchivedImage]:
    """The legacy `manifest.json`: Config, Layers (paths in the archive) and RepoTags."""
    images = []
    for entry in json.loads(archive.read(MANIFEST_FILE)):
        config = archive.read(str(entry["Config"]))
        layers = [str(p) for p in entry.get("Layers") or []]
        tags = [refs.normalize_tag(t) for t in entry.get("RepoTags") or []]
        images.append(ArchivedImage(config, layers, tags))
    return images


def _from_descriptor(archive: Archive, desc: dict[str, Any], inherited: str | None) -> list[ArchivedImage]:
    """Follow an index.json descriptor (through nested indexes, to this platform) to its image."""
    name = _name_of(desc.get("annotations") or {}) or inherited
    data = archive.blob(str(desc.get("digest", "")))
    if desc.get("mediaType") in INDEX_TYPES:
        nested = json.loads(data)
        chosen = pick_platform(nested, "linux", go_arch()) if any(
            "platform" in d for d in nested.get("manifests") or []) else (nested.get("manifests") or [None])[0]
        return _from_descriptor(archive, chosen, name) if chosen else []
    manifest = json.loads(data)
    config = archive.blob(manifest["config"]["digest"])
    layers = [f"blobs/sha256/{_hex(d['digest'])}" for d in manifest.get("layers") or []]
    return [ArchivedImage(config, layers, [name] if name else [])]


def _name_of(annotations: dict[str, str]) -> str | None:
    """The tag an index entry names: containerd's full image name, else an OCI ref name that is
    a whole reference (`busybox:1`); a bare tag (`latest`, as umoci writes) names no repository."""
    full = annotations.get(IMAGE_NAME_ANNOTATION)
    if full:
        return refs.normalize_tag(full)
    ref_name = annotations.get(REF_NAME_ANNOTATION) or ""
    if ":" in ref_name or "/" in ref_name:
        return refs.normalize_tag(ref_name)
    return None


def _merge_tags(images: list[ArchivedImage]) -> list[ArchivedImage]:
    """index.json has an entry per tag: one image per config, with all its tags."""
    merged: dict[bytes, ArchivedImage] = {}
    for image in images:
        if image.config in merged:
            merged[image.config].tags.extend(t for t in image.tags if t not in merged[image.config].tags)
        else:
            merged[image.config] = image
    return list(merged.values())


class CountingReader(io.RawIOBase):
    """A reader that reports how many bytes went through it (progress of a load or import)."""

    def __init__(self, source: BinaryIO, report: Callable[[int], None]) -> None:
        self.source, self.report, self.done = source, report, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.source.read(len(buffer))
        buffer[:len(data)] = data
        self.done += len(data)
        self.report(self.done)
        return len(data)


def check_layers(image: ArchivedImage) -> list[str]:
    """The config's diff_ids, refused (as dockerd does) when the layer count disagrees."""
    diff_ids = diff_ids_of(image.config)
    if len(diff_ids) != len(image.layers):
        raise BadRequest(f"invalid manifest, layers length mismatch: expected {len(diff_ids)}, "
                         f"got {len(image.layers)}")
    return diff_ids


def load(store: ImageStore, archive: Archive, images: list[ArchivedImage], quiet: bool, emit: Emit,
         stored: Callable[[str], None] = lambda image_id: None) -> None:
    """Store each image: new layers (with "Loading layer" progress unless `quiet`), config,
    tags; dockerd's `Loaded image` lines (and its rename notice when a tag moves). `stored` is
    told each image's ID once it is stored and tagged (the engine's `load` event)."""
    for image in images:
        diff_ids = check_layers(image)
        with store.keeping_layers(diff_ids), ThreadPoolExecutor(UNPACKS, thread_name_prefix="load") as pool:
            # each layer is read and unpacked in a thread of its own, at once; a layer that
            # cannot be unpacked fails the load
            arriving: list[tuple[str, Future[PreparedLayer | None]]] = []
            try:
                for member, diff_id, chain in zip(image.layers, diff_ids, chain_ids(diff_ids), strict=True):
                    if not store.has_layer(diff_id):
                        own = archive.reader(member)
                        source: BinaryIO = own or archive.open(member)
                        if not quiet:
                            source = io.BufferedReader(CountingReader(source, Throttled(
                                emit, "Loading layer", _hex(chain)[:12], archive.size(member))))
                        if own is not None:
                            arriving.append((diff_id, pool.submit(store.receive_layer, source, diff_id)))
                        else:  # the archive's one reader: read here, one layer after the other
                            ready = store.receive_layer(source, diff_id)
                            done: Future[PreparedLayer | None] = Future()
                            done.set_result(ready)
                            arriving.append((diff_id, done))
            except BaseException:
                discard_arriving(arriving)
                raise
            store.unpack_arriving(diff_ids, arriving)
            loaded = store.add_image_from_layers(image.config)
        for tag in image.tags:
            previous = _tagged(store, tag)
            if previous is not None and previous != loaded.id:
                emit({"stream": f"The image {tag} already exists, renaming the old one with ID "
                                f"{previous} to empty string\n"})
            name, _, tag_part = tag.rpartition(":")
            store.tag(loaded.id, name, tag_part)
            emit({"stream": f"Loaded image: {tag}\n"})
        if not image.tags:
            emit({"stream": f"Loaded image ID: {loaded.id}\n"})
        stored(loaded.id)


def _tagged(store: ImageStore, tag: str) -> str | None:
    try:
        return store.resolve(tag).id
    except NotFound:
        return None


# ---- export ------------------------------------------------------------------------------

def export_tree(root: Root, out: BinaryIO) -> None:
    """A tar of the directory tree `root` as `docker export` writes a container's filesystem:
    names relative to the root, directories before their contents in name order, hard links as
    links to the first name seen, file capabilities kept, sockets left out."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        top = root.open_at("/", os.O_PATH | os.O_DIRECTORY)
        try:
            add_tree(tar, top, "")
        finally:
            os.close(top)


def add_tree(tar: tarfile.TarFile, fd: int, rel: str) -> None:
    """Add the entry an O_PATH|O_NOFOLLOW `fd` holds, named `rel`, and everything below it
    (export, docker cp): walked and read by fds (runtime/rootfd.py), so that a symlink swapped
    in meanwhile is archived as the symlink it is, never followed to a host file. An empty
    `rel` leaves the top directory itself out."""
    seen: dict[tuple[int, int], str] = {}
    for name, st, entry in rootfd.walk(fd, rel):
        info = tar_entry(name, st, entry, seen) if name else None
        if info is None:
            continue
        if info.isreg():
            with os.fdopen(rootfd.open_regular(entry), "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)


def tar_entry(rel: str, st: os.stat_result, fd: int,
              seen: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """The tar header of one entry (`fd`: an O_PATH fd of it; `seen`: the first name of each
    inode with several links), or None for what a tar cannot carry (sockets). A file's
    security.capability goes along, as moby's tars carry it."""
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            info.type, info.linkname = tarfile.LNKTYPE, seen[key]
        else:
            seen[key] = rel
            info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, rootfd.read_link(fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None
    if not stat.S_ISLNK(mode):
        capability = rootfd.getxattr(fd, _CAPABILITY_XATTR)
        if capability is not None:
            info.pax_headers = {f"SCHILY.xattr.{_CAPABILITY_XATTR}":
                                capability.decode("utf-8", "surrogateescape")}
    return info
