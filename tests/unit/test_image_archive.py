"""docker save / load archives (both layouts), export trees, import URLs. Loading unpacks layers,
which needs root (chown), as the layer tests do."""
import gzip
import hashlib
import io
import json
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from tether.api.archives import download_url
from tether.image import ImageStore, archive
from tether.rules.errors import BadRequest, NotFound
from tether.runtime.rootfd import Root


def layer(*files: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], cmd: str = "sh") -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
                       "created": "2024-01-02T03:04:05Z",
                       "rootfs": {"type": "layers", "diff_ids": [digest(x) for x in layers]}}).encode()


def tar_of(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def load_into(store: ImageStore, data: bytes, quiet: bool = True) -> list[dict]:
    messages: list[dict] = []
    source = archive.Archive(io.BytesIO(data))
    archive.load(store, source, archive.read_images(source), quiet, messages.append)
    return messages


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "a")


@pytest.fixture
def other(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "b")


BASE = layer(("etc/base", b"base"))
TOP = layer(("etc/top", b"top"))


def two_images(store: ImageStore) -> tuple:
    """An image of one layer and another of two sharing it, tagged in two repositories."""
    small = store.add_image(config_for([BASE]), [io.BytesIO(BASE)], "base:1")
    big = store.add_image(config_for([BASE, TOP], "top"), [io.BytesIO(BASE), io.BytesIO(TOP)], "app:1")
    store.tag(big.id, "app", "2")
    store.tag(big.id, "localhost:5000/x/app", "v")
    return small, big


# ---- select (docker save's names) --------------------------------------------------------

def test_select_by_tag_repo_and_id(store: ImageStore) -> None:
    small, big = two_images(store)
    [item] = archive.select(store, ["app:1"])
    assert (item.image.id, item.tags) == (big.id, ["app:1"])
    [item] = archive.select(store, ["app"])  # every tag of the repository
    assert item.tags == ["app:1", "app:2"]
    items = archive.select(store, [small.id[7:19], "base:1", "localhost:5000/x/app:v"])
    assert [(i.image.id, i.tags) for i in items] == [(small.id, ["base:1"]),
                                                      (big.id, ["localhost:5000/x/app:v"])]
    assert archive.select(store, [big.id])[0].tags == []


def test_select_errors_are_dockers(store: ImageStore) -> None:
    two_images(store)
    empty = store.add_image(json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode(),
                            [], "empty:1")
    with pytest.raises(BadRequest, match="^empty export - not implemented$"):
        archive.select(store, [empty.id])
    with pytest.raises(NotFound, match="^reference does not exist$"):
        archive.select(store, ["app:3"])
    with pytest.raises(NotFound, match="^No such image: nosuch$"):
        archive.select(store, ["nosuch"])


# ---- save --------------------------------------------------------------------------------

def test_save_writes_oci_layout_and_legacy_manifest(store: ImageStore) -> None:
    small, big = two_images(store)
    out = io.BytesIO()
    archive.save(store, archive.select(store, ["base:1", "app:1", "app:2"]), out)
    tar = tarfile.open(fileobj=io.BytesIO(out.getvalue()))
    names = tar.getnames()
    blobs = [n for n in names if n.startswith("blobs/sha256/")]
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert names[len(blobs) + 2:] == ["index.json", "manifest.json", "oci-layout", "repositories"]
    assert len(blobs) == len(set(blobs)) == 2 + 2 + 2  # layers, configs, manifests: each once
    for name in blobs:  # every blob is named by its digest, dated as its image was made
        assert hashlib.sha256(tar.extractfile(name).read()).hexdigest() == name.rsplit("/", 1)[1]
        assert tar.getmember(name).mtime == 1704164645
    read = lambda n: json.loads(tar.extractfile(n).read())  # noqa: E731
    assert read("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    manifest = read("manifest.json")
    assert manifest == [
        {"Config": f"blobs/sha256/{small.id[7:]}", "RepoTags": ["base:1"],
         "Layers": [f"blobs/sha256/{digest(BASE)[7:]}"]},
        {"Config": f"blobs/sha256/{big.id[7:]}", "RepoTags": ["app:1", "app:2"],
         "Layers": [f"blobs/sha256/{digest(BASE)[7:]}", f"blobs/sha256/{digest(TOP)[7:]}"]}]
    assert tar.extractfile(manifest[1]["Config"]).read() == store.config_bytes(big)
    assert read("repositories") == {"base": {"1": digest(BASE)[7:]},
                                    "app": {"1": digest(TOP)[7:], "2": digest(TOP)[7:]}}
    index = read("index.json")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    names_in_index = [d["annotations"] for d in index["manifests"]]
    assert names_in_index[1:] == [
        {"io.containerd.image.name": "docker.io/library/app:1", "org.opencontainers.image.ref.name": "1"},
        {"io.containerd.image.name": "docker.io/library/app:2", "org.opencontainers.image.ref.name": "2"}]
    oci = read(f"blobs/sha256/{index['manifests'][1]['digest'][7:]}")
    assert oci["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": big.id,
                             "size": len(store.config_bytes(big))}
    assert [(x["digest"], x["size"]) for x in oci["layers"]] == [(digest(BASE), len(BASE)),
                                                                 (digest(TOP), len(TOP))]


def test_untagged_save_has_null_repo_tags_and_no_repositories(store: ImageStore) -> None:
    small, _ = two_images(store)
    out = io.BytesIO()
    archive.save(store, archive.select(store, [small.id]), out)
    tar = tarfile.open(fileobj=io.BytesIO(out.getvalue()))
    assert "repositories" not in tar.getnames()
    assert json.loads(tar.extractfile("manifest.json").read())[0]["RepoTags"] is None
    assert "annotations" not in json.loads(tar.extractfile("index.json").read())["manifests"][0]


def test_save_then_load_keeps_ids_tags_and_layers(store: ImageStore, other: ImageStore) -> None:
    small, big = two_images(store)
    out = io.BytesIO()
    archive.save(store, archive.select(store, ["base", "app", "localhost:5000/x/app"]), out)
    messages = load_into(other, out.getvalue())
    assert [m["stream"] for m in messages] == [
        "Loaded image: base:1\n", "Loaded image: app:1\n", "Loaded image: app:2\n",
        "Loaded image: localhost:5000/x/app:v\n"]
    assert other.resolve("app:2").id == big.id and other.resolve("base:1").id == small.id
    assert other.config_bytes(other.resolve(big.id)) == store.config_bytes(big)
    with other.layer_tar(digest(TOP)) as tar:
        assert tar.read() == TOP
    assert (other.lower_dirs(other.resolve(big.id))[0] / "etc/top").read_bytes() == b"top"


# ---- load --------------------------------------------------------------------------------

def legacy_archive(tag: str) -> bytes:
    """Docker 20.10's layout: `<id>/layer.tar`, a second image reaching a shared layer through a
    relative symlink, config as `<id>.json`."""
    cfg1, cfg2 = config_for([BASE]), config_for([BASE, TOP], "top")
    return tar_of({"v1a/layer.tar": BASE, "v1a/VERSION": b"1.0", "v1b/layer.tar": TOP,
                   f"{digest(cfg1)[7:]}.json": cfg1, f"{digest(cfg2)[7:]}.json": cfg2,
                   "manifest.json": json.dumps([
                       {"Config": f"{digest(cfg1)[7:]}.json", "RepoTags": [tag], "Layers": ["v1a/layer.tar"]},
                       {"Config": f"./{digest(cfg2)[7:]}.json", "RepoTags": None,
                        "Layers": ["v1c/layer.tar", "v1b/layer.tar"]}]).encode()},
                  symlinks={"v1c/layer.tar": "../v1a/layer.tar"})


def test_load_legacy_layout(store: ImageStore) -> None:
    messages = load_into(store, legacy_archive("old:1"), quiet=False)
    cfg2 = config_for([BASE, TOP], "top")
    progress = [m for m in messages if "status" in m]
    assert {m["status"] for m in progress} == {"Loading layer"}
    assert [m["stream"] for m in messages if "stream" in m] == [
        "Loaded image: old:1\n", f"Loaded image ID: {digest(cfg2)}\n"]
    # one progress run per new layer, named by its chain ID; the shared layer is loaded once
    top_chain = hashlib.sha256(f"{digest(BASE)} {digest(TOP)}".encode()).hexdigest()
    assert [m["id"] for m in progress if m["progressDetail"]["current"] == m["progressDetail"]["total"]] \
        == [digest(BASE)[7:19], top_chain[:12]]
    assert progress[-1]["progressDetail"] == {"current": len(TOP), "total": len(TOP)}
    assert store.resolve("old:1").config["config"]["Cmd"] == ["sh"]


def test_load_again_moves_tag_with_dockers_notice(store: ImageStore) -> None:
    load_into(store, legacy_archive("old:1"))
    first = store.resolve("old:1").id
    data = tar_of({"l.tar": TOP, "c.json": config_for([TOP]),
                   "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["old:1"],
                                                 "Layers": ["l.tar"]}]).encode()})
    messages = load_into(store, data, quiet=False)
    assert [m.get("stream") for m in messages] == [
        f"The image old:1 already exists, renaming the old one with ID {first} to empty string\n",
        "Loaded image: old:1\n"]  # the layer was there already: no progress


def oci_layout(entries: list[tuple[bytes, list[bytes], dict]], nested: bool = False) -> bytes:
    """A plain OCI layout (no manifest.json), layers gzip- or zstd-compressed as umoci and
    skopeo write them; `nested` puts the manifests behind an index with platforms."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    descriptors = []
    for config, blobs, annotations in entries:
        files[f"blobs/sha256/{digest(config)[7:]}"] = config
        for blob in blobs:
            files[f"blobs/sha256/{digest(blob)[7:]}"] = blob
        manifest = json.dumps({"schemaVersion": 2, "config": {"digest": digest(config), "size": len(config)},
                               "layers": [{"digest": digest(b), "size": len(b)} for b in blobs]}).encode()
        files[f"blobs/sha256/{digest(manifest)[7:]}"] = manifest
        descriptors.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest(manifest), "size": len(manifest), "annotations": annotations})
    if nested:
        other = dict(descriptors[0], platform={"os": "linux", "architecture": "s390x"}, digest=digest(b"x"))
        index = json.dumps({"schemaVersion": 2, "manifests": [
            other, {**descriptors[0], "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
        files[f"blobs/sha256/{digest(index)[7:]}"] = index
        descriptors = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(index),
                        "size": len(index), "annotations": descriptors[0]["annotations"]}]
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": descriptors}).encode()
    return tar_of(files)


def test_load_oci_layout_with_gzip_and_zstd_layers(store: ImageStore) -> None:
    blobs = [gzip.compress(BASE), zstandard.ZstdCompressor().compress(TOP)]
    config = config_for([BASE, TOP])
    messages = load_into(store, oci_layout([
        (config, blobs, {"org.opencontainers.image.ref.name": "latest"}),
        (config, blobs, {"org.opencontainers.image.ref.name": "registry.local/app:3"}),
        (config_for([BASE]), blobs[:1], {"io.containerd.image.name": "docker.io/library/named:2",
                                         "org.opencontainers.image.ref.name": "2"})]))
    assert [m["stream"] for m in messages] == ["Loaded image: registry.local/app:3\n",
                                               "Loaded image: named:2\n"]
    image = store.resolve("registry.local/app:3")
    assert image.id == digest(config)
    with store.layer_tar(digest(TOP)) as tar:
        assert tar.read() == TOP


def test_load_oci_index_picks_this_platform(store: ImageStore, monkeypatch) -> None:
    monkeypatch.setattr(archive, "go_arch", lambda: "amd64")
    config = config_for([BASE])
    messages = load_into(store, oci_layout([(config, [BASE], {})], nested=True))
    assert messages == [{"stream": f"Loaded image ID: {digest(config)}\n"}]


@pytest.mark.parametrize("data, error", [
    (b"not a tar at all" * 64, "archive/tar: invalid tar header"),
    (b"short", "unexpected EOF"),
    (tar_of({"something": b"x"}), "neither manifest.json nor index.json"),
    (tar_of({"manifest.json": b"{"}), "invalid archive: malformed manifest"),
    (tar_of({"manifest.json": b'{"Config": "x"}'}), "invalid archive: malformed manifest"),
    (tar_of({"manifest.json": b'[["not", "an", "entry"]]'}), "invalid archive: malformed manifest"),
    (tar_of({"index.json": b'{"manifests": [{"digest": 7}]}'}), "unsupported digest"),
    (tar_of({"manifest.json": b'[{"Config": "missing.json", "Layers": []}]'}), "missing.json is missing"),
])
def test_load_refuses_what_is_not_an_archive(store: ImageStore, data: bytes, error: str) -> None:
    with pytest.raises(BadRequest, match=error):
        archive.read_images(archive.Archive(io.BytesIO(data)))


def test_load_checks_layer_count_and_digests(store: ImageStore) -> None:
    bad_count = tar_of({"c.json": config_for([BASE, TOP]), "l.tar": BASE, "manifest.json": json.dumps(
        [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}]).encode()})
    with pytest.raises(BadRequest, match="layers length mismatch: expected 2, got 1"):
        load_into(store, bad_count)
    layout = oci_layout([(config_for([BASE]), [BASE], {})])
    tampered = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(layout)) as src, tarfile.open(fileobj=tampered, mode="w") as dst:
        for member in src:
            data = src.extractfile(member).read()
            if data == config_for([BASE]):
                data = data.replace(b"amd64", b"arm64")
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BadRequest, match="does not match its digest"):
        load_into(store, tampered.getvalue())
    assert store.list() == []


def test_load_refuses_a_layer_that_cannot_be_unpacked(store: ImageStore) -> None:
    evil = tar_of({"link/escape": b"x"}, symlinks={"link": "/tmp"})  # the parent named second
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(evil)) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        members = src.getmembers()
        for member in reversed(members):  # the symlink first, then the file below it
            dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    evil = buf.getvalue()
    data = tar_of({"c.json": config_for([evil]), "l.tar": evil, "manifest.json": json.dumps(
        [{"Config": "c.json", "RepoTags": ["evil:1"], "Layers": ["l.tar"]}]).encode()})
    with pytest.raises(BadRequest, match="invalid tar entry 'link/escape'"):
        load_into(store, data)
    with pytest.raises(NotFound):
        store.resolve("evil:1")
    assert not Path("/tmp/escape").exists()
    # layers unpack at once while the archive is read: good layers around the bad one,
    # already unpacked or half-way, leave nothing behind either
    good_below, good_above = layer(("a", b"1")), layer(("b", b"2"))
    stack = [good_below, evil, good_above]
    data = tar_of({"c.json": config_for(stack), "0.tar": good_below, "1.tar": evil, "2.tar": good_above,
                   "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["evil:2"],
                                                 "Layers": ["0.tar", "1.tar", "2.tar"]}]).encode()})
    with pytest.raises(BadRequest, match="invalid tar entry 'link/escape'"):
        load_into(store, data)
    assert sorted(p.name for p in [*store.blobs.iterdir(), *store.layers.iterdir()]) == []
    # a later layer that does not match its diff_id: the ones prepared before it are discarded
    data = tar_of({"c.json": config_for(stack), "0.tar": good_below, "1.tar": good_above, "2.tar": good_above,
                   "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["evil:3"],
                                                 "Layers": ["0.tar", "1.tar", "2.tar"]}]).encode()})
    with pytest.raises(BadRequest, match="layer tar hashes to"):
        load_into(store, data)
    assert sorted(p.name for p in [*store.blobs.iterdir(), *store.layers.iterdir()]) == []


# ---- export ------------------------------------------------------------------------------

def test_export_tree_entries(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d/sub").mkdir(parents=True)
    (root / "d/f").write_bytes(b"data")
    os.chown(root / "d/f", 12, 34)
    os.chmod(root / "d/f", 0o4751)  # after chown, which clears set-id bits
    os.utime(root / "d/f", (1000, 1000))
    os.link(root / "d/f", root / "hard")
    os.symlink("/etc/passwd", root / "sym")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.setxattr(root / "d/f", "security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    out = io.BytesIO()
    with Root.open(root) as fd_root:
        archive.export_tree(fd_root, out)
    tar = tarfile.open(fileobj=io.BytesIO(out.getvalue()))
    members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["d", "d/f", "d/sub", "fifo", "hard", "null", "sym"]  # no socket
    f = members["d/f"]
    assert (f.mode, f.uid, f.gid, f.mtime, f.uname) == (0o4751, 12, 34, 1000, "")
    assert tar.extractfile(f).read() == b"data"
    assert f.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") \
        == os.getxattr(root / "d/f", "security.capability")
    assert members["hard"].islnk() and members["hard"].linkname == "d/f"
    assert members["sym"].issym() and members["sym"].linkname == "/etc/passwd"
    assert members["fifo"].isfifo() and members["d"].isdir()
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)


# ---- import from a URL -------------------------------------------------------------------

def test_download_url_as_dockerd_reads_it() -> None:
    assert download_url("http://127.0.0.1:8000/x.tar") == "http://127.0.0.1:8000/x.tar"
    assert download_url("127.0.0.1:8000/x.tar") == "http://127.0.0.1:8000/x.tar"
    with pytest.raises(BadRequest, match='unsupported protocol scheme "file"'):
        download_url("file:///etc/shadow")
