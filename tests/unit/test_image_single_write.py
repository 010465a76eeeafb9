"""Layers are written once (issue 16): a pulled layer keeps the registry's blob, any other a
tar-split record; save and push give back the very bytes that came in (diff IDs and, for a
pulled layer, the registry's blob digest), a store written the older way still saves and
pushes, and a layer's files changed on disk (a symlink swapped in) make save fail instead of
reading a host file or writing a wrong tar."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tether.image import ImageStore, archive, distribution
from tether.image.distribution import LAYER_GZIP, PushPlan
from tether.image.tarsplit import LayerChanged
from tether.rules import refs
from test_image_layer_holds import FakeRegistry, config

BIG = os.urandom(3 << 20)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _entry(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE, link: str = "",
           pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = kind, link, 1700000000, 0o644
    info.size = len(data) if data is not None else 0
    info.pax_headers = pax or {}
    return info, data


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _dirty_padding(data: bytes, name: str) -> bytes:
    """`data` with the padding after `name`'s content filled with non-zero bytes."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember(name)
    end = member.offset_data + member.size
    pad = -end % 512
    return data[:end] + b"P" * pad + data[end + pad:]


def tricky_layers() -> list[bytes]:
    """Layers whose tars are not what a tar writer would make of their unpacked files: the same
    path twice, a directory replaced by a symlink, a whiteout of a file of the same layer,
    whiteouts and markers with data, long names (PAX and GNU), xattrs, hard links, a big file,
    non-zero padding, and bytes after the end-of-archive blocks."""
    d = tarfile.DIRTYPE
    first = _tar([
        _entry("a", kind=d), _entry("a/f", b"first content"), _entry("a/f", b"second, longer content"),
        _entry("d", kind=d), _entry("d/g", b"under a dir that goes"), _entry("d", kind=tarfile.SYMTYPE, link="a"),
        _entry("w", b"whited out in its own layer"), _entry(".wh.w", b"whiteout with data"),
        _entry(".wh..wh.plnk", b"marker with data"), _entry("empty", b""),
        _entry("x" * 150 + "/long-" + "y" * 120, b"long name"),
        _entry("cap", b"\x7fELF", pax={"SCHILY.xattr.user.note": "v"}),
        _entry("hard", kind=tarfile.LNKTYPE, link="a/f"), _entry("big", BIG),
    ])
    first = _dirty_padding(first, "cap") + b"trailing bytes after the end of the archive"
    second = _tar([_entry("g" * 130, b"gnu long name"), _entry("a/f", b"upper"), _entry("a/.wh.f")],
                  tarfile.GNU_FORMAT)
    return [first, second]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def stored_tar(store: ImageStore, diff_id: str) -> bytes:
    with store.layer_tar(diff_id) as tar:
        return tar.read()


def saved_layers(store: ImageStore, name: str) -> dict[str, bytes]:
    """The layer blobs of `docker save NAME`, by the digest they are stored under."""
    out = io.BytesIO()
    archive.save(store, archive.select(store, [name]), out)
    out.seek(0)
    blobs: dict[str, bytes] = {}
    with tarfile.open(fileobj=out) as tar:
        for member in tar:
            if member.isreg() and member.name.startswith("blobs/sha256/"):
                blobs["sha256:" + member.name.rsplit("/", 1)[1]] = tar.extractfile(member).read()  # type: ignore[union-attr]
    return blobs


class FakePushClient:
    """Records what a push uploads: blob bytes by digest, and the manifest."""

    def __init__(self) -> None:
        self.uploaded: dict[str, bytes] = {}
        self.manifest: dict[str, Any] = {}

    def has_blob(self, blob_digest: str) -> bool:
        return blob_digest in self.uploaded

    def upload_blob(self, blob_digest: str, size: int, source: BinaryIO, progress: Any = None) -> None:
        data = source.read()
        assert len(data) == size and digest(data) == blob_digest
        self.uploaded[blob_digest] = data

    def put_manifest(self, tag: str, manifest: bytes, media_type: str) -> str:
        self.manifest = json.loads(manifest)
        return digest(manifest)


def push(store: ImageStore, name: str) -> FakePushClient:
    client = FakePushClient()
    ref = refs.parse_normalized(name)
    PushPlan(refs.Reference(ref.domain, ref.path), [str(ref)], client).run(store, lambda msg: None)  # type: ignore[arg-type]
    return client


def pull(store: ImageStore, tars: list[bytes], blobs: list[bytes]) -> str:
    """Pull an image whose layers the registry serves as `blobs` (the `tars` compressed)."""
    cfg = config([digest(t) for t in tars])
    served = {digest(cfg): cfg, **{digest(b): b for b in blobs}}
    manifest = {"config": {"digest": digest(cfg), "size": len(cfg)},
                "layers": [{"mediaType": LAYER_GZIP, "digest": digest(b), "size": len(b)} for b in blobs]}
    ref = refs.parse_normalized("localhost:5000/i16/pulled:1")
    distribution.PullPlan(ref, FakeRegistry(served), manifest, digest(b"m")).run(store, lambda msg: None)  # type: ignore[arg-type]
    return str(ref)


def test_a_pulled_layer_keeps_the_registry_blob_and_saves_and_pushes_it_as_it_came(store: ImageStore) -> None:
    tars = tricky_layers()
    # compressed as no push of tether's would (level 9, a name and an mtime): the blob is the registry's
    blobs = [gzip.compress(t, 9, mtime=1234) for t in tars]
    name = pull(store, tars, blobs)
    for tar, blob in zip(tars, blobs):
        path, desc = store.pulled_blob(digest(tar))  # type: ignore[misc]
        assert path.read_bytes() == blob and desc["digest"] == digest(blob)
        assert not (store.blobs / digest(tar)[7:]).exists()  # no uncompressed copy
    saved = saved_layers(store, name)
    assert all(saved[digest(t)] == t for t in tars)
    client = push(store, name)
    assert [layer["digest"] for layer in client.manifest["layers"]] == [digest(b) for b in blobs]
    assert all(client.uploaded[digest(b)] == b for b in blobs)


def test_a_loaded_layer_is_given_back_byte_for_byte_from_its_files(store: ImageStore, tmp_path: Path) -> None:
    tars = tricky_layers()
    image = store.add_image(config([digest(t) for t in tars]), [io.BytesIO(t) for t in tars], "loaded:1")
    for tar in tars:
        layer_dir = store.layers / digest(tar)[7:]
        assert not (layer_dir / "blob").exists() and not (store.blobs / digest(tar)[7:]).exists()
        assert (layer_dir / "tar-split.gz").stat().st_size < len(tar) // 4
        assert stored_tar(store, digest(tar)) == tar
    assert (store.lower_dirs(image)[1] / "a/f").read_bytes() == b"second, longer content"
    assert (store.lower_dirs(image)[1] / "d").is_symlink()
    saved = saved_layers(store, "loaded:1")
    assert all(saved[digest(t)] == t for t in tars)
    # save, load into another store, save again: the same bytes again
    out = io.BytesIO()
    archive.save(store, archive.select(store, ["loaded:1"]), out)
    out.seek(0)
    other = ImageStore(tmp_path / "other")
    source = archive.Archive(out)
    archive.load(other, source, archive.read_images(source), True, lambda msg: None)
    assert all(stored_tar(other, digest(t)) == t for t in tars)
    client = push(store, "loaded:1")
    assert [gzip.decompress(client.uploaded[layer["digest"]]) for layer in client.manifest["layers"]] == tars


def test_a_store_written_the_older_way_still_saves_pushes_and_runs(tmp_path: Path) -> None:
    """Older tethers kept every layer as an uncompressed tar in blobs/ and unpacked it lazily."""
    root = tmp_path / "old"
    tars = tricky_layers()
    cfg = config([digest(t) for t in tars])
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for data in [cfg, *tars]:
        (blobs / digest(data)[7:]).write_bytes(data)
    (root / "images.json").write_text(json.dumps({digest(cfg): {"size": 1, "last_tag_time": ""}}))
    (root / "repositories.json").write_text(json.dumps({"old:1": digest(cfg)}))
    store = ImageStore(root)
    assert all(store.has_layer(digest(t)) for t in tars)
    assert all(saved_layers(store, "old:1")[digest(t)] == t for t in tars)
    client = push(store, "old:1")
    assert [gzip.decompress(client.uploaded[layer["digest"]]) for layer in client.manifest["layers"]] == tars
    top = store.lower_dirs(store.resolve("old:1"))[0]
    assert (top / ("g" * 130)).read_bytes() == b"gnu long name"
    assert all(stored_tar(store, digest(t)) == t for t in tars)  # still read from blobs/


def _swap_for_symlink(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def test_a_layer_file_swapped_for_a_symlink_cannot_make_save_read_a_host_file(store: ImageStore,
                                                                             tmp_path: Path) -> None:
    """The unpacked files came from a hostile image: read back only through fds resolved inside
    the layer, never following a symlink out of it; the save fails and nothing of the host file
    gets out."""
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"S" * len(b"first content"))
    tar = _tar([_entry("a", kind=tarfile.DIRTYPE), _entry("a/f", b"first content"), _entry("z", b"tail")])
    store.add_image(config([digest(tar)]), [io.BytesIO(tar)], "victim:1")
    diff = store.layers / digest(tar)[7:] / "diff"
    _swap_for_symlink(diff / "a/f", secret)
    with pytest.raises(LayerChanged):
        stored_tar(store, digest(tar))
    out = io.BytesIO()
    with pytest.raises(LayerChanged):
        archive.save(store, archive.select(store, ["victim:1"]), out)
    assert b"SSSS" not in out.getvalue()
    # a symlinked parent pointing at a host directory resolves inside the layer, not there
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    (host_dir / "f").write_bytes(b"first content")
    os.rename(diff / "a", diff / "a-moved")
    (diff / "a").symlink_to(host_dir)
    with pytest.raises(LayerChanged):
        stored_tar(store, digest(tar))


def test_a_layer_file_changed_on_disk_gives_an_error_never_the_whole_wrong_tar(store: ImageStore) -> None:
    tar = _tar([_entry("f", b"x" * 5000)])
    store.add_image(config([digest(tar)]), [io.BytesIO(tar)], "changed:1")
    (store.layers / digest(tar)[7:] / "diff" / "f").write_bytes(b"y" * 5000)  # same size
    got = bytearray()
    with pytest.raises(LayerChanged), store.layer_tar(digest(tar)) as reader:
        while chunk := reader.read(512):
            got += chunk
    assert len(got) < len(tar)


def test_a_pulled_blob_damaged_on_disk_gives_an_error(store: ImageStore) -> None:
    tars = [_tar([_entry("f", b"pulled" * 100)])]
    blobs = [gzip.compress(tars[0])]
    pull(store, tars, blobs)
    path, _ = store.pulled_blob(digest(tars[0]))  # type: ignore[misc]
    path.write_bytes(gzip.compress(_tar([_entry("f", b"PULLED" * 100)])))
    with pytest.raises(LayerChanged):
        stored_tar(store, digest(tars[0]))


def test_a_fifo_swapped_into_a_layer_is_refused_not_opened(store: ImageStore) -> None:
    tar = _tar([_entry("f", b"data")])
    store.add_image(config([digest(tar)]), [io.BytesIO(tar)], "fifo:1")
    path = store.layers / digest(tar)[7:] / "diff" / "f"
    path.unlink()
    os.mkfifo(path)  # opening it for reading would block the save for good
    with pytest.raises(LayerChanged):
        stored_tar(store, digest(tar))
