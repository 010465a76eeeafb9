"""The legacy build cache (parent + recorded ContainerConfig + source hash), the committed image
config, the upper dir as a layer tar, and the parent chain that `docker history` walks."""
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tether.image.build import cache
from tether.image.build.commit import commit, mount_artifacts, write_layer
from tether.image.store import ImageStore, container_config
from tether.rules.errors import Conflict


def _base(store: ImageStore):
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as t:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 2
        t.addfile(info, io.BytesIO(b"x\n"))
    tar.seek(0)
    return store.import_tar(tar, "base:1", [], "")


def _step(store: ImageStore, parent, cmd: list[str], layer: bytes | None = None):
    recorded = container_config({"Cmd": cmd, "Image": parent.id, "Hostname": "abc"})
    image = commit(store, parent, container_config({"Cmd": ["sh"]}), recorded, "c" * 64,
                   None if layer is None else io.BytesIO(layer))
    return image, recorded


def test_lookup_finds_the_child_with_the_same_recorded_config(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    base = _base(store)
    child, recorded = _step(store, base, ["/bin/sh", "-c", "#(nop) ", "ENV A=1"])
    probe = {**recorded, "Hostname": "other", "Image": "ignored"}
    assert cache.lookup(store, base.id, probe).id == child.id
    assert cache.lookup(store, base.id, {**recorded, "Env": ["A=2"]}) is None
    assert cache.lookup(store, child.id, recorded) is None  # children of another parent only
    assert cache.lookup(store, "", recorded) is None         # scratch: images without a parent


def test_committed_config_and_history(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    base = _base(store)
    layer = io.BytesIO()
    upper = tmp_path / "upper"
    (upper / "app").mkdir(parents=True)
    (upper / "app" / "f").write_text("hello")
    write_layer(upper, layer)
    nop, _ = _step(store, base, ["/bin/sh", "-c", "#(nop) ", "ENV A=1"])
    run, _ = _step(store, nop, ["/bin/sh", "-c", "make"], layer.getvalue())
    config = run.config
    assert list(config) == sorted(config)
    assert config["history"][-2:] == [
        {"created": config["history"][-2]["created"], "created_by": "/bin/sh -c #(nop)  ENV A=1",
         "empty_layer": True},
        {"created": config["created"], "created_by": "/bin/sh -c make"}]
    assert config["rootfs"]["diff_ids"] == [*base.diff_ids, "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()]
    view = store.resolve(run.id).inspect()
    assert view["Parent"] == nop.id and view["Container"] == "c" * 64
    history = store.history(run.id)
    assert [(h["Id"], h["CreatedBy"], h["Size"]) for h in history] == [
        (run.id, "/bin/sh -c make", 5), (nop.id, "/bin/sh -c #(nop)  ENV A=1", 0),
        (base.id, "", 2)]
    assert history[-1]["Tags"] == ["base:1"] and history[0]["Tags"] is None


def test_write_layer_sorted_numeric_and_hard_links(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "b").mkdir(parents=True)
    (upper / "b" / "f").write_text("data")
    os.link(upper / "b" / "f", upper / "b" / "g")
    (upper / "a").symlink_to("b/f")
    out = io.BytesIO()
    write_layer(upper, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "b", "b/f", "b/g"]
    assert members[0].issym() and members[3].islnk() and members[3].linkname == "b/f"
    assert all(m.uname == "" and m.gname == "" for m in members)


def test_source_hash_follows_content_and_modes_not_times(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "f"
    f.write_text("one")
    first = cache.source_hash([tmp_path / "d"])
    assert first.startswith("dir:")
    os.utime(f, (1, 1))
    assert cache.source_hash([tmp_path / "d"]) == first
    f.write_text("two")
    assert cache.source_hash([tmp_path / "d"]) != first
    assert cache.source_hash([f]).startswith("file:")
    assert cache.source_hash([f, tmp_path / "d"]).startswith("multi:")
    before = cache.source_hash([f])
    os.chmod(f, 0o600)
    assert cache.source_hash([f]) != before


def test_rmi_prunes_untagged_parents_and_refuses_a_parent_with_children(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    base = _base(store)
    step, _ = _step(store, base, ["/bin/sh", "-c", "#(nop) ", "ENV A=1"])
    top, _ = _step(store, step, ["/bin/sh", "-c", "#(nop) ", "ENV B=2"])
    store.tag(top.id, "app", "1")
    with pytest.raises(Conflict, match=f"unable to delete {step.short_id} \\(cannot be forced\\) - "
                                       "image has dependent child images"):
        store.remove(step.id, True, lambda _: [])
    report = store.remove("app:1", False, lambda _: [])
    assert report == [{"Untagged": "app:1"}, {"Deleted": top.id}, {"Deleted": step.id}]
    assert store.resolve("base:1").id == base.id  # tagged: pruning stops there
    again, _ = _step(store, base, ["/bin/sh", "-c", "#(nop) ", "ENV C=3"])
    store.tag(again.id, "other", "1")
    assert store.remove("other:1", False, lambda _: [], prune=False) == [
        {"Untagged": "other:1"}, {"Deleted": again.id}]


def test_mount_artifacts_are_left_out_of_a_commit(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "hosts").write_text("")  # the image has its own /etc/hosts: kept
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode)
    for name in ("hostname", "resolv.conf", "hosts"):
        (upper / "etc" / name).write_text("")
    (upper / "proc").mkdir()
    assert mount_artifacts(upper, [lower]) == {"etc/hostname", "etc/resolv.conf", "proc"}
    (lower / "etc" / "hosts").unlink()
    assert mount_artifacts(upper, [lower]) == {"etc", "etc/hosts", "etc/hostname", "etc/resolv.conf",
                                               "proc"}
    out = io.BytesIO()
    assert write_layer(upper, out, mount_artifacts(upper, [lower])) == 0  # nothing else changed
    (upper / "etc" / "resolv.conf").write_text("nameserver 10.0.0.1\n")  # written: a real change
    assert mount_artifacts(upper, [lower]) == {"etc/hosts", "etc/hostname", "proc"}


def test_write_layer_whiteouts_opaque_dirs_and_capabilities(tmp_path: Path) -> None:
    """An upper dir in overlayfs form comes out in Docker's: a 0/0 device is `.wh.<name>`, an
    opaque directory gets `.wh..wh..opq`, a file capability rides along as moby's tars carry it."""
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    os.mknod(upper / "d" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "ping").write_bytes(b"elf")
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12)
    os.setxattr(upper / "ping", "security.capability", cap)
    out = io.BytesIO()
    assert write_layer(upper, out) == 4
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["d", "d/.wh..wh..opq", "d/.wh.gone", "ping"]
    assert members["ping"].pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == cap
