"""ImageStore: import, resolve, tags, Docker's removal rules and layer GC, bootstrap."""
import fcntl
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
from pathlib import Path

import pytest

from tether.image import ImageStore, bootstrap_busybox, busybox_rootfs_tar, layers
from tether.image.store import chain_ids
from tether.rules.errors import BadRequest, Conflict, NotFound

NOBODY = lambda image_id: []  # noqa: E731


def layer(content: bytes = b"hello") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


def test_import_shape_and_content_address(store: ImageStore) -> None:
    data = layer()
    image = store.import_tar(io.BytesIO(gzip.compress(data)), "myimg:1.0", ["ENV a=b", "EXPOSE 80"], "")
    raw = (store.blobs / image.id[7:]).read_bytes()
    assert image.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    with store.layer_tar(diff_id) as tar:
        assert tar.read() == data  # given back as the uncompressed tar, byte for byte
    config = json.loads(raw)
    assert list(config) == ["architecture", "comment", "config", "container_config", "created", "history",
                            "os", "rootfs"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
    assert config["history"] == [{"created": config["created"], "comment": "Imported from -"}]
    assert config["config"]["Env"] == ["a=b"] and config["config"]["ExposedPorts"] == {"80/tcp": {}}
    inspect = image.inspect()
    assert list(inspect) == ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container",
                             "ContainerConfig", "DockerVersion", "Author", "Config", "Architecture", "Os",
                             "Size", "VirtualSize", "GraphDriver", "RootFS", "Metadata"]
    assert inspect["RepoTags"] == ["myimg:1.0"] and inspect["Size"] == 5
    assert inspect["RootFS"] == {"Type": "layers", "Layers": [diff_id]}
    assert inspect["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    summary = image.summary()
    assert summary["RepoTags"] == ["myimg:1.0"] and isinstance(summary["Created"], int)
    assert (summary["Containers"], summary["SharedSize"], summary["ParentId"]) == (-1, -1, "")


def test_import_message_and_untagged(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), None, [], "hello")
    assert image.config["comment"] == "hello" and image.repo_tags == []
    assert image.inspect()["Metadata"]["LastTagTime"] == "0001-01-01T00:00:00Z"


def test_import_rejects_bad_input_before_storing(store: ImageStore) -> None:
    with pytest.raises(BadRequest, match="bogus is not a valid change command"):
        store.import_tar(io.BytesIO(layer()), "x", ["BOGUS 1"], "")
    with pytest.raises(BadRequest, match="repository name must be lowercase"):
        store.import_tar(io.BytesIO(layer()), "X", [], "")
    with pytest.raises(BadRequest, match="invalid tar archive"):
        store.import_tar(io.BytesIO(b"garbage" * 200), "x", [], "")
    assert list(store.blobs.iterdir()) == [] and store.list() == []


def test_resolve(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), "busybox", [], "")
    hex_id = image.id[7:]
    for ref in ["busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest",
                image.id, hex_id, hex_id[:4], "sha256:" + hex_id[:12]]:
        assert store.resolve(ref).id == image.id, ref
    with pytest.raises(NotFound, match="^No such image: nothere:latest$"):
        store.resolve("nothere")
    with pytest.raises(NotFound, match=f"^No such image: sha256:{'0' * 64}$"):
        store.resolve("0" * 64)
    with pytest.raises(NotFound, match="^No such image: busybox@sha256:"):
        store.resolve("busybox@sha256:" + hex_id)
    with pytest.raises(BadRequest, match="must be lowercase"):
        store.resolve("Busybox")


def test_ambiguous_prefix_is_not_found(store: ImageStore) -> None:
    ids = {store.import_tar(io.BytesIO(layer(bytes([n]))), None, [], "").id[7:] for n in range(40)}
    common = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)
    with pytest.raises(NotFound, match=f"^No such image: {common}:latest$"):
        store.resolve(common)


def test_tags_persist_and_sort(store: ImageStore, tmp_path: Path) -> None:
    image = store.import_tar(io.BytesIO(layer()), "bb:1", [], "")
    assert store.tag("bb:1", "localhost:5000/x/y", "t") == "localhost:5000/x/y:t"
    assert store.tag("bb:1", "foo:2", "3") == "foo:3"
    assert store.tag("bb:1", "docker.io/library/zz") == "zz:latest"
    with pytest.raises(BadRequest, match="^invalid tag format$"):
        store.tag("bb:1", "foo", "-x")
    with pytest.raises(BadRequest, match="refusing to create a tag with a digest reference"):
        store.tag("bb:1", "foo@sha256:" + "a" * 64)
    with pytest.raises(NotFound):
        store.tag("missing", "foo")
    reopened = ImageStore(tmp_path / "image")
    assert reopened.resolve(image.id).repo_tags == ["bb:1", "foo:3", "zz:latest", "localhost:5000/x/y:t"]
    assert json.loads((store.root / "repositories.json").read_bytes())["foo:3"] == image.id


def test_remove_tag_of_several_only_untags(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), "bb:1", [], "")
    store.tag("bb:1", "other/y")
    assert store.remove("bb:1", False, lambda i: [("c" * 64, False)]) == [{"Untagged": "bb:1"}]
    assert store.resolve(image.id).repo_tags == ["other/y:latest"]


def test_remove_by_id_with_several_tags_needs_force(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), "bb:1", [], "")
    store.tag("bb:1", "bb", "x")
    short = image.id[7:19]
    with pytest.raises(Conflict) as exc:
        store.remove(short[:4], False, NOBODY)
    assert exc.value.message == (f"conflict: unable to delete {short} (must be forced) - "
                                 "image is referenced in multiple repositories")
    diff_id = image.diff_ids[0]
    assert store.remove(image.id, True, NOBODY) == [
        {"Untagged": "bb:1"}, {"Untagged": "bb:x"}, {"Deleted": image.id}, {"Deleted": diff_id}]
    assert store.list() == [] and list(store.blobs.iterdir()) == []


def test_remove_with_containers(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), "bb:3", [], "")
    short, cid = image.id[7:19], "3842" * 16
    running = lambda i: [(cid, True)]  # noqa: E731
    stopped = lambda i: [(cid, False)]  # noqa: E731
    with pytest.raises(Conflict) as exc:
        store.remove("bb:3", False, stopped)
    assert exc.value.message == (f'conflict: unable to remove repository reference "bb:3" (must force) - '
                                 f"container {cid[:12]} is using its referenced image {short}")
    with pytest.raises(Conflict) as exc:
        store.remove(short, False, stopped)
    assert exc.value.message == (f"conflict: unable to delete {short} (must be forced) - "
                                 f"image is being used by stopped container {cid[:12]}")
    # forced untag of a running container's image keeps the image, now dangling
    assert store.remove("bb:3", True, running) == [{"Untagged": "bb:3"}]
    with pytest.raises(Conflict) as exc:
        store.remove(short, True, running)
    assert exc.value.message == (f"conflict: unable to delete {short} (cannot be forced) - "
                                 f"image is being used by running container {cid[:12]}")
    lower = store.lower_dirs(image)
    # forced delete with a stopped container: the image goes, its layer stays for the container
    assert store.remove(short, True, stopped) == [{"Deleted": image.id}]
    assert lower[0].is_dir() and ImageStore(store.root).list() == []
    assert lower[0].is_dir() and ImageStore(store.root).has_layer(image.diff_ids[0])


def test_layer_gc_keeps_shared_layers(store: ImageStore) -> None:
    a = store.import_tar(io.BytesIO(layer()), "a", ["ENV x=1"], "")
    b = store.import_tar(io.BytesIO(layer()), "b", ["ENV x=2"], "")
    assert a.diff_ids == b.diff_ids and a.id != b.id
    diff = store.lower_dirs(a)[0]
    assert (diff / "f").read_bytes() == b"hello" and diff.parent.name == a.diff_ids[0][7:]
    assert store.remove("a", False, NOBODY) == [{"Untagged": "a:latest"}, {"Deleted": a.id}]
    assert diff.is_dir()
    assert store.remove("b", False, NOBODY) == [{"Untagged": "b:latest"}, {"Deleted": b.id},
                                                {"Deleted": b.diff_ids[0]}]
    assert not diff.parent.exists() and list(store.blobs.iterdir()) == []


def test_add_image_multi_layer(store: ImageStore) -> None:
    tars = [layer(b"one"), layer(b"two")]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2020-01-02T03:04:05.5Z",
                         "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    with pytest.raises(BadRequest):
        store.add_image(config, [io.BytesIO(t) for t in reversed(tars)], "m")
    image = store.add_image(config, [io.BytesIO(t) for t in tars], "m")
    assert image.summary()["Created"] == 1577934245 and image.size == 6
    top, bottom = store.lower_dirs(image)
    assert (top / "f").read_bytes() == b"two" and (bottom / "f").read_bytes() == b"one"
    assert image.inspect()["GraphDriver"]["Data"]["LowerDir"] == str(bottom)
    removed = store.remove("m", False, NOBODY)
    assert removed[2:] == [{"Deleted": c} for c in reversed(chain_ids(diff_ids))]


def test_start_up_removes_crash_leftovers(store: ImageStore) -> None:
    image = store.import_tar(io.BytesIO(layer()), "a", [], "")
    (store.blobs / ".tmp-1234").write_bytes(b"x")
    (store.layers / ".tmp-abc-1").mkdir()
    (store.blobs / ("e" * 64)).write_bytes(b"orphan")
    reopened = ImageStore(store.root)
    assert sorted(p.name for p in store.blobs.iterdir()) == [image.id[7:]]
    assert [p.name for p in store.layers.iterdir()] == [image.diff_ids[0][7:]]
    assert reopened.resolve("a").id == image.id


def test_list_newest_first(store: ImageStore) -> None:
    old = store.import_tar(io.BytesIO(layer(b"1")), "old", [], "", created="2001-01-01T00:00:00Z")
    new = store.import_tar(io.BytesIO(layer(b"2")), "new", [], "")
    assert [i.id for i in store.list()] == [new.id, old.id]


def test_bootstrap_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    first = bootstrap_busybox(ImageStore(tmp_path / "one"))
    store = ImageStore(tmp_path / "two")
    second = bootstrap_busybox(store)
    assert first.id == second.id and second.repo_tags == ["busybox:latest"]
    store.remove("busybox", False, NOBODY)
    store.import_tar(io.BytesIO(layer()), "busybox", [], "")
    again = bootstrap_busybox(store)
    assert again.id == first.id and store.resolve("busybox").id == first.id
    config = again.config["config"]
    assert config["Cmd"] == ["sh"]
    assert config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    root = store.lower_dirs(again)[0]
    assert (root / "bin/sh").stat().st_ino == (root / "bin/busybox").stat().st_ino
    assert (root / "usr/bin/wc").exists() and (root / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:root:/root:/bin/sh\n")


def test_busybox_rootfs_tar_matches_layer(tmp_path: Path) -> None:
    buf = io.BytesIO()
    busybox_rootfs_tar(buf)
    image = bootstrap_busybox(ImageStore(tmp_path))
    assert image.diff_ids == ["sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()]


@pytest.mark.parametrize("damage", [b'{"sha256:', b"[]", b"\xff\xfe"])
def test_unreadable_index_is_set_aside_and_no_blob_collected(store: ImageStore, damage: bytes) -> None:
    """A store whose images.json cannot be read opens empty (the daemon comes up), keeps the
    damaged file beside it and deletes no blob: they may be the images it lost."""
    image = store.import_tar(io.BytesIO(layer()), "a", [], "")
    orphan = store.blobs / ("e" * 64)
    orphan.write_bytes(b"orphan")
    (store.root / "images.json").write_bytes(damage)
    reopened = ImageStore(store.root)
    assert reopened.list() == []
    with pytest.raises(NotFound):
        reopened.resolve("a")
    aside = [p for p in store.root.iterdir() if p.name.startswith("images.json.corrupt-")]
    assert [p.read_bytes() for p in aside] == [damage]
    assert {p.name for p in store.blobs.iterdir()} == {image.id[7:], orphan.name}
    assert reopened.has_layer(image.diff_ids[0])


def test_image_with_missing_config_is_left_out(store: ImageStore) -> None:
    """An image whose config blob is gone is left out with its tags; the others stay usable and
    no blob is collected at that start."""
    gone = store.import_tar(io.BytesIO(layer(b"one")), "gone", [], "")
    kept = store.import_tar(io.BytesIO(layer(b"two")), "kept", [], "")
    (store.blobs / gone.id[7:]).unlink()
    reopened = ImageStore(store.root)
    assert [i.id for i in reopened.list()] == [kept.id]
    assert reopened.resolve("kept").id == kept.id
    with pytest.raises(NotFound):
        reopened.resolve("gone")
    assert reopened.has_layer(gone.diff_ids[0])  # its layer is kept for a repair


def _dir_flags(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, layers._FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
    finally:
        os.close(fd)


def test_layers_dir_spreads_new_layers_over_the_disk(store: ImageStore, tmp_path: Path) -> None:
    """`layers/` carries FS_TOPDIR_FL where the filesystem has it (ext4: `chattr +T`), so each
    layer unpacks in a block group of its own rather than where the last removed layers were."""
    probe = tmp_path / "probe"
    probe.mkdir()
    layers.spread_subtrees(probe)
    try:
        taken = _dir_flags(probe) & layers._FS_TOPDIR_FL
    except OSError:
        taken = 0
    if not taken:
        pytest.skip("the test directory's filesystem has no FS_TOPDIR_FL")
    assert _dir_flags(store.layers) & layers._FS_TOPDIR_FL


def test_a_layers_dir_that_cannot_take_the_flag_is_left_alone(tmp_path: Path) -> None:
    """A symlinked layers dir (moved to another disk) is not followed and does not fail."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "layers").symlink_to(tmp_path / "elsewhere")
    layers.spread_subtrees(tmp_path / "layers")
    layers.spread_subtrees(tmp_path / "missing")
