"""Pull and push through a real registry (docker-registry 2.8): tether's CLI, the docker CLI and
the docker SDK against tetherd, basic auth with `tether login`, and an image of several layers
with whiteouts compared file by file with what skopeo + umoci make of the same image."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from conftest import running_daemon
from localregistry import LocalRegistry, forget_test_images, free_port, registries, token_registry
from tether.image import distribution
from tether.image.bootstrap import busybox_rootfs_tar
from tether.image.store import ImageStore, go_arch

pytestmark = pytest.mark.integration
CREATED = "2024-01-02T03:04:05Z"


@pytest.fixture(autouse=True)
def _forget_pushed_images(daemon) -> Iterator[None]:
    yield
    forget_test_images(daemon)


def tar_bytes(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info.mtime = info.mtime or 1700000000
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None, mode: int = 0o644,
           uid: int = 0, gid: int = 0, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
    if data is not None:
        info.size = len(data)
    return info, data


def whiteout_layers() -> list[bytes]:
    """busybox, then a layer of owned files, modes, links and dirs, then one that deletes a file
    (`.wh.`), hides a directory's old content (opaque) and rewrites a file."""
    base = io.BytesIO()
    busybox_rootfs_tar(base)
    d = tarfile.DIRTYPE
    second = tar_bytes([
        tar_entry("data", d, mode=0o755), tar_entry("data/keep", data=b"one\n", mode=0o640, uid=1000, gid=1000),
        tar_entry("data/gone", data=b"bye\n"), tar_entry("data/suid", data=b"#!/bin/sh\n", mode=0o4755),
        tar_entry("data/link", tarfile.SYMTYPE, link="keep", mode=0o777),
        tar_entry("data/hard", tarfile.LNKTYPE, link="data/keep", mode=0o640, uid=1000, gid=1000),
        tar_entry("opq", d, mode=0o750, uid=5, gid=6), tar_entry("opq/old", data=b"old\n"),
        tar_entry("opq/sub", d, mode=0o755), tar_entry("opq/sub/older", data=b"older\n"),
    ])
    third = tar_bytes([
        tar_entry("data", d, mode=0o755), tar_entry("data/.wh.gone", data=b""),
        tar_entry("data/keep", data=b"two\n", mode=0o600, uid=1000, gid=1000),
        tar_entry("opq", d, mode=0o750, uid=5, gid=6), tar_entry("opq/.wh..wh..opq", data=b""),
        tar_entry("opq/new", data=b"new\n", mode=0o644, uid=7, gid=8),
    ])
    return [base.getvalue(), second, third]


def whiteout_config(layers: list[bytes]) -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = {"architecture": go_arch(), "os": "linux", "created": CREATED,
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         "Cmd": ["sh"]},
              "history": [{"created": CREATED, "created_by": f"layer {i}"} for i in range(len(layers))],
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return json.dumps(config, separators=(",", ":")).encode()


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="i6a-scratch-", dir="/var/tmp"))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-R", str(path / "merged")], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def push_from_test_store(store_dir: Path, repo_tag: str, layers: list[bytes] | None = None) -> str:
    """Push the whiteout image (or one of `layers`) with tether's own library (no daemon): the
    registry then holds an image no daemon has; the image ID it must come back with is returned."""
    store = ImageStore(store_dir)
    layers = layers or whiteout_layers()
    image = store.add_image(whiteout_config(layers), [io.BytesIO(layer) for layer in layers], repo_tag)
    name, _, tag = repo_tag.rpartition(":")
    distribution.resolve_push(store, name, tag).run(store, lambda msg: None)
    return image.id


def tree(root: Path) -> dict[str, tuple]:
    """Every path below `root` with its type, mode, owner, mtime (not of directories: extraction
    order changes them), and content or link target."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                what: object = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            else:
                what = None
            mtime = None if stat.S_ISDIR(st.st_mode) else int(st.st_mtime)
            found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, mtime, what)
    return found


def test_tether_push_then_pull_into_another_daemon(daemon, fresh_daemon) -> None:
    with registries([daemon.netns, fresh_daemon.netns]) as (reg, _):
        name = f"{reg.address}/i6a/roundtrip:v1"
        assert daemon.tether("tag", "busybox", name).returncode == 0
        pushed = daemon.tether("push", name)
        assert pushed.returncode == 0, pushed.stderr
        lines = pushed.stdout.decode().splitlines()
        assert lines[0] == f"The push refers to repository [{reg.address}/i6a/roundtrip]"
        assert lines[-1].startswith("v1: digest: sha256:") and lines[-1].endswith(" size: 527")
        digest = lines[-1].split()[2]
        source = daemon.api("GET", f"/images/{name}/json")[1]
        assert source["RepoDigests"] == [f"{reg.address}/i6a/roundtrip@{digest}"]

        again = daemon.tether("push", name)
        assert again.returncode == 0
        assert any(line.endswith(": Layer already exists") for line in again.stdout.decode().splitlines())

        pulled = fresh_daemon.tether("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        out = pulled.stdout.decode().splitlines()
        assert out[0] == "v1: Pulling from i6a/roundtrip"
        assert f"Digest: {digest}" in out
        assert out[-2:] == [f"Status: Downloaded newer image for {name}", name]
        copy = fresh_daemon.api("GET", f"/images/{name}/json")[1]
        assert (copy["Id"], copy["RootFS"]) == (source["Id"], source["RootFS"])
        assert copy["RepoDigests"] == [f"{reg.address}/i6a/roundtrip@{digest}"]
        by_digest = fresh_daemon.api("GET", f"/images/{reg.address}/i6a/roundtrip@{digest}/json")
        assert by_digest[1]["Id"] == source["Id"]
        up_to_date = fresh_daemon.tether("pull", name)
        assert f"Status: Image is up to date for {name}" in up_to_date.stdout.decode()
        by_digest_ref = f"{reg.address}/i6a/roundtrip@{digest}"
        assert fresh_daemon.tether("rmi", name).returncode == 0
        pinned = fresh_daemon.tether("pull", by_digest_ref)
        assert pinned.returncode == 0, pinned.stderr
        assert pinned.stdout.decode().splitlines()[0] == f"{digest}: Pulling from i6a/roundtrip"
        assert pinned.stdout.decode().splitlines()[-1] == by_digest_ref
        assert fresh_daemon.api("GET", f"/images/{by_digest_ref}/json")[1]["Id"] == source["Id"]
        untagged = fresh_daemon.api("DELETE", f"/images/{by_digest_ref}")
        assert untagged[1][0] == {"Untagged": by_digest_ref}

        missing = fresh_daemon.tether("pull", f"{reg.address}/i6a/roundtrip:nope")
        assert missing.returncode == 1
        assert missing.stderr.decode().strip() == (
            f"Error response from daemon: manifest for {reg.address}/i6a/roundtrip:nope not found: "
            "manifest unknown: manifest unknown")
        daemon.tether("rmi", name)


def test_whiteout_image_matches_skopeo_and_umoci(daemon, scratch: Path) -> None:
    with registries([None, daemon.netns]) as (host_reg, _):
        name = f"{host_reg.address}/i6a/whiteouts:v1"
        image_id = push_from_test_store(scratch / "store", name)

        pulled = daemon.tether("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        info = daemon.api("GET", f"/images/{name}/json")[1]
        assert info["Id"] == image_id
        run = daemon.tether("run", "--rm", name, "sh", "-c",
                            "cat /data/keep; ls /opq; ls /data; stat -c '%a %u:%g' /data/keep /opq/new")
        assert run.returncode == 0, run.stderr
        assert run.stdout.decode().split("\n") == ["two", "new", "hard", "keep", "link", "suid",
                                                   "600 1000:1000", "644 7:8", ""]

        oci = scratch / "oci"
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{name}",
                        f"oci:{oci}:v1"], check=True, capture_output=True, timeout=120)
        subprocess.run(["umoci", "unpack", "--image", f"{oci}:v1", str(scratch / "bundle")], check=True,
                       capture_output=True, timeout=120)
        layer_root = daemon.data_root / "image" / "layers"
        lowers = [layer_root / d.split(":", 1)[1] / "diff" for d in reversed(info["RootFS"]["Layers"])]
        merged = scratch / "merged"
        merged.mkdir()
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        "ro,lowerdir=" + ":".join(map(str, lowers)), str(merged)], check=True)
        try:
            assert tree(merged) == tree(scratch / "bundle" / "rootfs")
        finally:
            subprocess.run(["umount", str(merged)], check=True)
        daemon.tether("rmi", name)


def test_docker_cli_and_sdk_push_and_pull(daemon) -> None:
    with registries([daemon.netns]) as (reg,):
        name = f"localhost:{reg.port}/i6a/dockercli"
        assert daemon.docker("tag", "busybox", f"{name}:v1").returncode == 0
        pushed = daemon.docker("push", f"{name}:v1")
        assert pushed.returncode == 0, pushed.stderr
        assert "v1: digest: sha256:" in pushed.stdout.decode()
        assert daemon.docker("rmi", f"{name}:v1").returncode == 0
        pulled = daemon.docker("pull", f"{name}:v1")
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.decode().splitlines()[-1] == f"{name}:v1"

        sdk = daemon.sdk()
        try:
            sdk.images.get("busybox").tag(f"{name}-sdk", "v2")
            lines = list(sdk.images.push(f"{name}-sdk", "v2", stream=True, decode=True))
            assert any("aux" in line and line["aux"]["Tag"] == "v2" for line in lines), lines
            sdk.images.remove(f"{name}-sdk:v2")
            image = sdk.images.pull(f"{name}-sdk", tag="v2")
            assert f"{name}-sdk:v2" in image.tags
            assert any(d.startswith(f"{name}-sdk@sha256:") for d in image.attrs["RepoDigests"])
        finally:
            sdk.close()
        for tag in (f"{name}:v1", f"{name}-sdk:v2"):
            daemon.tether("rmi", tag)


def test_basic_auth_with_tether_login(daemon, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with registries([daemon.netns], users={"alice": "s3cret"}) as (reg,):
        name = f"{reg.address}/i6a/private:v1"
        assert daemon.tether("tag", "busybox", name).returncode == 0
        anonymous = daemon.tether("push", name)
        assert anonymous.returncode == 1
        assert anonymous.stderr.decode() == "no basic auth credentials\n"

        wrong = daemon.tether("login", "-u", "alice", "-p", "nope", reg.address)
        assert wrong.returncode == 1
        assert wrong.stderr.decode().strip() == (f"Error response from daemon: login attempt to "
                                                 f"http://{reg.address}/v2/ failed with status: 401 Unauthorized")
        assert not (tmp_path / "config.json").exists()

        good = daemon.tether("login", "-u", "alice", "--password-stdin", reg.address, input=b"s3cret\n")
        assert good.returncode == 0, good.stderr
        assert good.stdout.decode().strip() == "Login Succeeded"
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["auths"][reg.address] == {"auth": "YWxpY2U6czNjcmV0"}

        assert daemon.tether("push", name).returncode == 0
        assert daemon.tether("rmi", name).returncode == 0
        pulled = daemon.tether("pull", name)
        assert pulled.returncode == 0, pulled.stderr

        out = daemon.tether("logout", reg.address)
        assert out.stdout.decode().strip() == f"Removing login credentials for {reg.address}"
        assert json.loads((tmp_path / "config.json").read_text())["auths"] == {}
        assert daemon.tether("rmi", name).returncode == 0
        assert daemon.tether("pull", name).returncode == 1


def test_token_auth_through_a_token_server(daemon, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with token_registry(daemon.netns, "alice", "s3cret") as reg:
        name = f"{reg.address}/i6a/tokens:v1"
        assert daemon.tether("tag", "busybox", name).returncode == 0
        anonymous = daemon.tether("push", name)
        assert anonymous.returncode == 1
        assert "incorrect username or password" in anonymous.stderr.decode()
        wrong = daemon.tether("login", "-u", "alice", "-p", "nope", reg.address)
        assert wrong.returncode == 1 and "incorrect username or password" in wrong.stderr.decode()

        assert daemon.tether("login", "-u", "alice", "-p", "s3cret", reg.address).returncode == 0
        pushed = daemon.tether("push", name)
        assert pushed.returncode == 0, pushed.stderr
        assert daemon.tether("rmi", name).returncode == 0
        pulled = daemon.docker("pull", name)  # the docker CLI reads the same config.json
        assert pulled.returncode == 0, pulled.stderr
        assert daemon.tether("rmi", name).returncode == 0


def test_all_tags_push_and_pull(daemon, fresh_daemon) -> None:
    with registries([daemon.netns, fresh_daemon.netns]) as (reg, _):
        repo = f"{reg.address}/i6a/alltags"
        for tag in ("a", "b"):
            assert daemon.tether("tag", "busybox", f"{repo}:{tag}").returncode == 0
        pushed = daemon.tether("push", "--all-tags", repo)
        assert pushed.returncode == 0, pushed.stderr
        assert [line.split(":")[0] for line in pushed.stdout.decode().splitlines() if "digest:" in line] == ["a", "b"]
        pulled = fresh_daemon.tether("pull", "-a", repo)
        assert pulled.returncode == 0, pulled.stderr
        lines = pulled.stdout.decode().splitlines()
        assert {"a: Pulling from i6a/alltags", "b: Pulling from i6a/alltags"} <= set(lines)  # registry's order
        assert lines[-2:] == [f"Status: Downloaded newer image for {repo}", repo]
        tags = fresh_daemon.api("GET", f"/images/{repo}:a/json")[1]["RepoTags"]
        assert f"{repo}:a" in tags and f"{repo}:b" in tags
        for tag in ("a", "b"):
            daemon.tether("rmi", f"{repo}:{tag}")


def test_oci_manifests_and_indexes_pick_this_platform(daemon, tmp_path: Path) -> None:
    """An OCI manifest, an OCI index and a Docker manifest list, made from pushed images with the
    registry client: the index entries for this machine's architecture are the ones pulled."""
    from tether.image.registry import (INDEX_TYPES, MANIFEST_LIST_V2, MANIFEST_V2, OCI_INDEX, OCI_MANIFEST,
                                       RegistryClient)

    with registries([None, daemon.netns]) as (reg, _):
        repo = f"{reg.address}/i6a/multi"
        wanted = push_from_test_store(tmp_path / "a", f"{repo}:docker")
        push_from_test_store(tmp_path / "b", f"{repo}:other", whiteout_layers()[:1])
        client = RegistryClient(reg.address, "i6a/multi", push=True)
        docker_manifest, _, _ = client.get_manifest("docker")
        other, _, other_digest = client.get_manifest("other")
        oci = json.loads(docker_manifest)
        oci["mediaType"] = OCI_MANIFEST
        oci["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json"
        for layer in oci["layers"]:
            layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        oci_bytes = json.dumps(oci).encode()
        oci_digest = client.put_manifest("oci", oci_bytes, OCI_MANIFEST)
        foreign = "s390x" if go_arch() != "s390x" else "arm64"
        for tag, index_type, entry_type in (("index", OCI_INDEX, OCI_MANIFEST), ("list", MANIFEST_LIST_V2, MANIFEST_V2)):
            assert index_type in INDEX_TYPES
            index = {"schemaVersion": 2, "mediaType": index_type, "manifests": [
                {"mediaType": MANIFEST_V2, "digest": other_digest, "size": len(other),
                 "platform": {"os": "linux", "architecture": foreign}},
                {"mediaType": entry_type, "digest": oci_digest, "size": len(oci_bytes),
                 "platform": {"os": "linux", "architecture": go_arch()}}]}
            client.put_manifest(tag, json.dumps(index).encode(), index_type)

        for tag in ("oci", "index", "list"):
            pulled = daemon.tether("pull", f"{repo}:{tag}")
            assert pulled.returncode == 0, pulled.stderr
            info = daemon.api("GET", f"/images/{repo}:{tag}/json")[1]
            assert info["Id"] == wanted
        digest_line = next(line for line in pulled.stdout.decode().splitlines() if line.startswith("Digest: "))
        assert f"{repo}@{digest_line.split()[1]}" in info["RepoDigests"]  # the list's digest, as Docker
        for tag in ("oci", "index", "list"):
            daemon.tether("rmi", f"{repo}:{tag}")


def test_a_layer_shared_by_concurrent_pulls_is_downloaded_once(daemon, tmp_path: Path) -> None:
    from tether.image.registry import RegistryClient

    shared = os.urandom(1 << 20)
    layer_sets = [[tar_bytes([tar_entry("shared", data=shared)]), tar_bytes([tar_entry(f"own{i}", data=b"%d" % i)])]
                  for i in range(2)]
    with registries([None, daemon.netns]) as (host_reg, reg):
        repo = f"{host_reg.address}/i6a/shared"
        for i, layers in enumerate(layer_sets):
            push_from_test_store(tmp_path / str(i), f"{repo}:{i}", layers)
        manifest, _, _ = RegistryClient(host_reg.address, "i6a/shared").get_manifest("0")
        shared_blob = json.loads(manifest)["layers"][0]["digest"]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda i: daemon.tether("pull", f"{repo}:{i}"), range(2)))
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        assert reg.requests("GET", f"/v2/i6a/shared/blobs/{shared_blob}") == 1
        for i in range(2):
            daemon.tether("rmi", f"{repo}:{i}")


def test_insecure_registry_flag_allows_plain_http(daemon) -> None:
    """A registry on a non-loopback address speaks plain HTTP: refused over HTTPS by default, used
    once the daemon is started with `--insecure-registry` naming its network."""
    ip = "10.99.0.1"
    with running_daemon("--insecure-registry", "10.99.0.0/16") as insecure:
        for d in (daemon, insecure):
            subprocess.run(["ip", "-n", d.netns, "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
        storage = tempfile.mkdtemp(prefix="i6a-registry-data-", dir="/var/tmp")
        port = free_port()
        regs = [LocalRegistry(Path(storage), d.netns, port, ip=ip) for d in (daemon, insecure)]
        try:
            for reg in regs:
                reg.start()
            name = f"{regs[0].address}/i6a/insecure:v1"
            refused = daemon.tether("pull", name)
            assert refused.returncode == 1
            assert refused.stderr.decode() == (f'Error response from daemon: Get "https://{regs[0].address}/v2/": '
                                               "http: server gave HTTP response to HTTPS client\n")
            assert insecure.tether("tag", "busybox", name).returncode == 0
            assert insecure.tether("push", name).returncode == 0
            assert insecure.tether("rmi", name).returncode == 0
            assert insecure.tether("pull", name).returncode == 0
        finally:
            for reg in regs:
                reg.stop()
            shutil.rmtree(storage, ignore_errors=True)
            subprocess.run(["ip", "-n", daemon.netns, "addr", "del", f"{ip}/32", "dev", "lo"], check=False)


def test_docker_compose_pull(daemon, tmp_path: Path) -> None:
    """docker-compose 1.29 (the docker SDK inside) pulls a service's image through tetherd."""
    with registries([daemon.netns]) as (reg,):
        name = f"{reg.address}/i6a/compose:v1"
        compose_file = tmp_path / "docker-compose.yml"
        compose_file.write_text(f'version: "2.4"\nservices:\n  web:\n    image: {name}\n')
        env = {**os.environ, "DOCKER_HOST": daemon.host}

        def compose(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["docker-compose", "-p", "i6acompose", "-f", str(compose_file), *args],
                                  capture_output=True, env=env, timeout=120)

        assert daemon.tether("tag", "busybox", name).returncode == 0
        assert daemon.tether("push", name).returncode == 0  # compose pushes built services only
        assert daemon.tether("rmi", name).returncode == 0
        pulled = compose("pull")
        assert pulled.returncode == 0, pulled.stderr
        assert daemon.api("GET", f"/images/{name}/json")[0] == 200


def test_tls_registry_on_loopback_is_used_without_verification(daemon) -> None:
    """A self-signed TLS registry on loopback: HTTPS is tried first and its certificate is not
    checked (loopback registries are insecure ones), as dockerd does."""
    storage = Path(tempfile.mkdtemp(prefix="i6a-registry-data-", dir="/var/tmp"))
    reg = LocalRegistry(storage, daemon.netns, free_port(), tls=True)
    try:
        reg.start()
        name = f"{reg.address}/i6a/tls:v1"
        assert daemon.tether("tag", "busybox", name).returncode == 0
        pushed = daemon.tether("push", name)
        assert pushed.returncode == 0, pushed.stderr
        assert daemon.tether("rmi", name).returncode == 0
        assert daemon.tether("pull", name).returncode == 0
    finally:
        reg.stop()
        shutil.rmtree(storage, ignore_errors=True)


@pytest.mark.parametrize("bad_bytes", ["garbage", "other_gzip"])
def test_a_blob_with_wrong_bytes_is_refused_as_such(daemon, scratch: Path, bad_bytes: str) -> None:
    """Layers are decompressed and stored as they arrive; the blob's digest is only known at
    its end. A registry serving wrong bytes (here: the stored blob overwritten, as a broken or
    hostile registry would serve it) must fail the pull with dockerd's verification error, not
    with what the decompressor or the diff_id check made of the garbage, and keep nothing."""
    with registries([None, daemon.netns]) as (reg, _):
        name = f"{reg.address}/i6a/tampered:v1"
        push_from_test_store(scratch / "store", name)
        manifest = json.loads(subprocess.run(
            ["curl", "-sf", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
             f"http://{reg.address}/v2/i6a/tampered/manifests/v1"], check=True, capture_output=True).stdout)
        digest = manifest["layers"][1]["digest"]
        hexd = digest.split(":")[1]
        data = reg.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
        size = data.stat().st_size
        if bad_bytes == "garbage":
            data.write_bytes(os.urandom(size))
        else:
            data.write_bytes(gzip.compress(tar_bytes([tar_entry("other", data=b"x")])))
        pulled = daemon.tether("pull", name)
        assert pulled.returncode == 1
        assert f"filesystem layer verification failed for digest {digest}" in pulled.stderr.decode()
        assert daemon.api("GET", f"/images/{name}/json")[0] == 404


def test_a_pulled_image_is_pushed_and_saved_as_it_came(daemon, tmp_path: Path) -> None:
    """The layer blobs a registry sent are kept as sent: pushed to another repository they keep
    the registry's digests (gzip'ed as tether would not: level 9, a name, an mtime), and saved
    they are the layer tars their diff IDs name."""
    from tether.image.registry import MANIFEST_V2, RegistryClient

    tars = [tar_bytes([tar_entry("one", data=os.urandom(70000))]),
            tar_bytes([tar_entry("two", data=b"second layer"), tar_entry("one", data=b"replaced")])]
    blobs = [gzip.compress(t, 9, mtime=1234) for t in tars]
    config = whiteout_config(tars)
    with registries([None, daemon.netns]) as (host_reg, _):
        client = RegistryClient(host_reg.address, "i16/asis", push=True)
        for data in [config, *blobs]:
            client.upload_blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data), io.BytesIO(data))
        client.put_manifest("1", distribution.schema2_manifest(
            {"mediaType": distribution.CONFIG_V2, "size": len(config),
             "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
            [{"mediaType": distribution.LAYER_GZIP, "size": len(b), "digest": "sha256:" + hashlib.sha256(b).hexdigest()}
             for b in blobs]), MANIFEST_V2)
        source, target = f"{host_reg.address}/i16/asis:1", f"{host_reg.address}/i16/again:1"
        assert daemon.tether("pull", source).returncode == 0
        assert daemon.tether("tag", source, target).returncode == 0
        pushed = daemon.tether("push", target)
        assert pushed.returncode == 0, pushed.stderr
        manifest, _, _ = RegistryClient(host_reg.address, "i16/again").get_manifest("1")
        assert [layer["digest"] for layer in json.loads(manifest)["layers"]] == \
            ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
        archive_path = tmp_path / "saved.tar"
        assert daemon.tether("save", "-o", str(archive_path), source).returncode == 0
        with tarfile.open(archive_path) as saved:
            for layer in tars:
                member = saved.extractfile(f"blobs/sha256/{hashlib.sha256(layer).hexdigest()}")
                assert member is not None and member.read() == layer
        for name in (source, target):
            daemon.tether("rmi", name)
