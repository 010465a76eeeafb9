"""A pull, load or commit cut off half-way leaves no layer behind, an `rmi` meanwhile does not
pull a layer from under it, and diff_ids from untrusted configs never become paths."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tether.image import ImageStore, archive, distribution
from tether.image.distribution import PullPlan
from tether.image.registry import BlobReader, RegistryError
from tether.image.store import diff_ids_of
from tether.rules import refs
from tether.rules.errors import BadRequest, NotFound
from test_image_archive import digest, layer, tar_of


def config(diff_ids: list[str]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


BASE = layer(("etc/base", b"base"))
TOP = layer(("etc/top", b"top"))
MID = layer(("etc/mid", b"mid"))


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def leftovers(store: ImageStore) -> list[str]:
    """Every blob and layer dir the store holds (configs included), temporaries too."""
    return sorted(p.name for p in [*store.blobs.iterdir(), *store.layers.iterdir()])


class _Body(io.BytesIO):
    """A response body that stops with a reset after `cut` bytes when `cut` is set."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        super().__init__(data[:cut] if cut is not None else data)
        self.cut = cut

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        if n == 0 and self.cut is not None:
            raise ConnectionResetError("connection reset")
        return n


class _FakeReply:
    def __init__(self, body: _Body) -> None:
        self.resp = body

    def close(self) -> None:
        self.resp.close()


class FakeRegistry:
    """Serves blobs by digest through the real BlobReader; `broken` ones fail half-way, as a
    registry that dies would, and `wrong` ones send other bytes than their digest names."""

    def __init__(self, blobs: dict[str, bytes], broken: frozenset[str] = frozenset(),
                 wrong: dict[str, bytes] | None = None) -> None:
        self.blobs, self.broken, self.wrong = blobs, broken, wrong or {}

    def open_blob(self, blob_digest: str, progress: Any = None) -> BlobReader:
        data = self.wrong.get(blob_digest, self.blobs[blob_digest])
        body = _Body(data, 100 if blob_digest in self.broken else None)
        return BlobReader(_FakeReply(body), blob_digest, refs.sha256_hex(blob_digest), progress)  # type: ignore[arg-type]

    def fetch_blob(self, blob_digest: str, out: BinaryIO, progress: Any = None) -> int:
        with self.open_blob(blob_digest, progress) as blob:
            data = blob.read()
        out.write(data)
        return len(data)


def plan(layers: list[bytes], broken: frozenset[str] = frozenset(),
         diff_ids: list[str] | None = None, wrong: dict[str, bytes] | None = None) -> PullPlan:
    cfg = config(diff_ids or [digest(x) for x in layers])
    blobs = {digest(cfg): cfg, **{digest(x): x for x in layers}}
    manifest = {"config": {"digest": digest(cfg), "size": len(cfg)},
                "layers": [{"digest": digest(x), "size": len(x)} for x in layers]}
    ref = refs.parse_normalized("localhost:5000/i6r/img:1")
    return PullPlan(ref, FakeRegistry(blobs, broken, wrong), manifest, digest(b"manifest"))  # type: ignore[arg-type]


def test_a_pull_cut_off_half_way_leaves_no_layer(store: ImageStore) -> None:
    with pytest.raises(RegistryError, match="connection reset"):
        plan([BASE, TOP], broken=frozenset({digest(TOP)})).run(store, lambda msg: None)
    assert leftovers(store) == []
    plan([BASE, TOP]).run(store, lambda msg: None)
    assert store.resolve("localhost:5000/i6r/img:1").diff_ids == [digest(BASE), digest(TOP)]


@pytest.mark.parametrize("sent", [b"not a tar at all" * 50, BASE, layer(("etc/other", b"x")),
                                  b"\x1f\x8b" + b"not gzip after its magic" * 5000,
                                  gzip.compress(TOP)[:-10] + b"cut short" * 5000])
def test_wrong_bytes_from_the_registry_fail_as_a_verification_error(store: ImageStore, sent: bytes) -> None:
    """A layer is stored as it arrives, before its digest is known: whatever the decompressor
    or the diff_id check makes of wrong bytes, the pull fails naming the blob, keeps nothing."""
    with pytest.raises(RegistryError, match=f"filesystem layer verification failed for digest {digest(TOP)}"):
        plan([BASE, TOP], wrong={digest(TOP): sent}).run(store, lambda msg: None)
    assert leftovers(store) == []


def test_blob_reader_checks_the_digest_at_the_end_every_time() -> None:
    good, bad = b"x" * 3000, b"y" * 3000
    with BlobReader(_FakeReply(_Body(good, None)), digest(good), refs.sha256_hex(digest(good)), None) as reader:  # type: ignore[arg-type]
        assert reader.read() == good and reader.read() == b""
    with BlobReader(_FakeReply(_Body(bad, None)), digest(good), refs.sha256_hex(digest(good)), None) as reader:  # type: ignore[arg-type]
        assert reader.read(1000) == b"y" * 1000
        for _ in range(2):
            with pytest.raises(RegistryError, match="verification failed"):
                reader.drain()


def test_a_failed_pull_keeps_layers_that_were_there_before(store: ImageStore) -> None:
    base = store.add_image(config([digest(BASE)]), [io.BytesIO(BASE)], "base:1")
    with pytest.raises(RegistryError):
        plan([BASE, TOP], broken=frozenset({digest(TOP)})).run(store, lambda msg: None)
    assert store.has_layer(digest(BASE)) and not store.has_layer(digest(TOP))
    assert store.resolve("base:1").id == base.id


def test_rmi_during_a_pull_leaves_the_layer_to_the_pull(store: ImageStore) -> None:
    """The pull finds BASE stored ("Already exists"); an rmi of its only image meanwhile must
    not delete it, and once the pull is done the layer belongs to the pulled image."""
    store.add_image(config([digest(BASE)]), [io.BytesIO(BASE)], "base:1")
    with store.keeping_layers([digest(BASE)]):
        records = store.remove("base:1", force=False, users=lambda image_id: [])
        assert {"Deleted": digest(BASE)} not in records and store.has_layer(digest(BASE))
        store.add_image_from_layers(config([digest(BASE)]), "again:1")
    assert store.has_layer(digest(BASE))


def test_a_layer_released_by_rmi_during_a_failed_pull_goes_with_it(store: ImageStore) -> None:
    store.add_image(config([digest(BASE)]), [io.BytesIO(BASE)], "base:1")
    with pytest.raises(RuntimeError), store.keeping_layers([digest(BASE)]):
        store.remove("base:1", force=False, users=lambda image_id: [])
        raise RuntimeError("the pull failed")
    assert leftovers(store) == []


def test_holds_nest_across_operations(store: ImageStore) -> None:
    """Two pulls share a layer: the one failing first must not remove what the other stored."""
    with store.keeping_layers([digest(BASE)]):
        with pytest.raises(RuntimeError), store.keeping_layers([digest(BASE)]):
            store.put_layer(io.BytesIO(BASE), digest(BASE))
            raise RuntimeError("first pull failed")
        assert store.has_layer(digest(BASE))
        store.add_image_from_layers(config([digest(BASE)]), "second:1")
    assert store.has_layer(digest(BASE))


def test_put_layer_needs_a_hold(store: ImageStore) -> None:
    with pytest.raises(RuntimeError, match="outside keeping_layers"):
        store.put_layer(io.BytesIO(BASE), digest(BASE))
    assert leftovers(store) == []


def truncated_load(store: ImageStore) -> None:
    """Two images, the second's last layer cut short: the first is loaded, the second not."""
    data = tar_of({"a.json": config([digest(BASE)]), "base.tar": BASE, "mid.tar": MID, "top.tar": TOP[:700],
                   "b.json": config([digest(BASE), digest(MID), digest(TOP)]), "manifest.json": json.dumps([
                       {"Config": "a.json", "RepoTags": ["a:1"], "Layers": ["base.tar"]},
                       {"Config": "b.json", "RepoTags": ["b:1"], "Layers": ["base.tar", "mid.tar", "top.tar"]}]).encode()})
    source = archive.Archive(io.BytesIO(data))
    archive.load(store, source, archive.read_images(source), True, lambda msg: None)


def test_a_truncated_layer_in_a_load_leaves_no_layer(store: ImageStore) -> None:
    with pytest.raises(BadRequest, match="invalid tar archive: unexpected end of data"):
        truncated_load(store)
    assert [image.repo_tags for image in store.list()] == [["a:1"]]
    assert store.has_layer(digest(BASE))
    assert not store.has_layer(digest(MID)) and not store.has_layer(digest(TOP))
    assert not any(name.startswith(".tmp-") for name in leftovers(store))


@pytest.mark.parametrize("bad", ["sha256:../../../../etc/passwd", "sha256:" + "A" * 64, "sha512:" + "a" * 128,
                                 "sha256:" + "a" * 64 + "\n", 7])
def test_malformed_diff_ids_are_refused(store: ImageStore, bad: Any) -> None:
    with pytest.raises(BadRequest):
        diff_ids_of(config([digest(BASE), bad]))
    with pytest.raises(BadRequest):
        store.add_image_from_layers(config([bad]))
    with pytest.raises(BadRequest):
        store.has_layer(bad)


def test_a_pull_refuses_a_config_naming_paths(store: ImageStore, tmp_path: Path) -> None:
    """A registry's config pointing a diff_id at a host file: refused, and nothing recorded, so
    no later rmi can delete that file."""
    victim = tmp_path / "victim"
    victim.write_bytes(BASE)
    escape = "sha256:" + "/".join([".."] * 8) + str(victim)
    with pytest.raises(BadRequest, match="unsupported digest"):
        plan([BASE], diff_ids=[escape]).run(store, lambda msg: None)
    assert store.list() == [] and victim.exists()


def test_a_load_refuses_a_config_naming_paths(store: ImageStore) -> None:
    data = tar_of({"c.json": config(["sha256:../../../../etc/hostname"]), "l.tar": BASE,
                   "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}]).encode()})
    source = archive.Archive(io.BytesIO(data))
    with pytest.raises(BadRequest, match="unsupported digest"):
        archive.check_layers(archive.read_images(source)[0])
    assert store.list() == []


def test_a_pull_refuses_an_oversized_config(store: ImageStore, monkeypatch) -> None:
    monkeypatch.setattr(distribution, "MAX_CONFIG_BYTES", 64)
    with pytest.raises(RegistryError, match="is larger than"):
        plan([BASE]).run(store, lambda msg: None)
    assert leftovers(store) == []


def test_a_daemon_killed_mid_pull_restarts_without_its_layers(store: ImageStore) -> None:
    """Killed with a layer stored and its image not yet recorded (the hold never released): the
    next start-up collects the layer; the images that were complete stay."""
    store.add_image(config([digest(BASE)]), [io.BytesIO(BASE)], "base:1")
    hold = store.keeping_layers([digest(BASE), digest(TOP)])
    hold.__enter__()
    store.put_layer(io.BytesIO(TOP), digest(TOP))
    restarted = ImageStore(store.root)
    assert restarted.has_layer(digest(BASE)) and not restarted.has_layer(digest(TOP))
    assert [image.repo_tags for image in restarted.list()] == [["base:1"]]


def test_a_pull_unpacks_its_layers(store: ImageStore) -> None:
    """As dockerd: the pulled layers are unpacked by the pull, the first run finds them ready."""
    plan([BASE, TOP]).run(store, lambda msg: None)
    for blob, name in ((BASE, "etc/base"), (TOP, "etc/top")):
        assert (store.layers / refs.sha256_hex(digest(blob)) / "diff" / name).is_file()


@pytest.mark.parametrize("bottom_evil", [False, True])
def test_a_pull_with_a_layer_that_cannot_be_unpacked_fails_and_keeps_nothing(store: ImageStore,
                                                                              bottom_evil: bool) -> None:
    """Layers unpack at once in the download threads: the good ones already unpacked when the
    bad one fails (above or below them) leave no temporary directory either."""
    stack = [_evil_layer(), TOP, MID] if bottom_evil else [BASE, TOP, _evil_layer()]
    with pytest.raises(BadRequest, match="invalid tar entry 'link/escape'"):
        plan(stack).run(store, lambda msg: None)
    assert leftovers(store) == []
    with pytest.raises(NotFound):
        store.resolve("localhost:5000/i6r/img:1")


def _evil_layer() -> bytes:
    """A symlink and a file written through it: refused by the unpacker."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/nonexistent-dir"
        tar.addfile(link)
        f = tarfile.TarInfo("link/escape")
        f.size = 1
        tar.addfile(f, io.BytesIO(b"x"))
    return buf.getvalue()


def test_a_pulled_layer_implying_a_directory_gives_it_the_look_below(store: ImageStore) -> None:
    """The layers are unpacked at once; the directory the top one only implies still gets the
    owner and mode the bottom one gives it (finished bottom up)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo("opt")
        d.type, d.mode, d.uid, d.gid, d.mtime = tarfile.DIRTYPE, 0o750, 7, 8, 1234
        tar.addfile(d)
    bottom = buf.getvalue()
    top = layer(("opt/app/file", b"x"))
    plan([bottom, top]).run(store, lambda msg: None)
    implied = store.layers / refs.sha256_hex(digest(top)) / "diff" / "opt"
    st = implied.lstat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime)) == (0o750, 7, 8, 1234)
    assert [p.name for p in store.layers.iterdir() if p.name.startswith(".tmp-")] == []
