"""The registry client's and pull/push's pure rules: challenges, insecure registries, platform
choice, X-Registry-Auth, references, progress messages, deterministic layer compression."""
from __future__ import annotations

import base64
import gzip
import io
import json
import threading
import time
from pathlib import Path

import pytest

from tether.api.distribution import registry_domain
from tether.api.piped import error_line
from tether.image import distribution
from tether.image.registry import (Credentials, credentials_from_header, is_insecure, parse_challenge,
                                   pick_platform, registry_host)
from tether.image.store import ImageStore
from tether.rules.errors import BadRequest, NotFound


def test_bearer_challenge_is_parsed_with_its_parameters() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                        'scope="repository:library/busybox:pull"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    assert parse_challenge('Basic realm="Registry Realm"').scheme == "basic"


@pytest.mark.parametrize("host, listed, expected", [
    ("localhost:5000", [], True), ("127.0.0.1:5000", [], True), ("127.9.9.9", [], True),
    ("[::1]:5000", [], True), ("registry.example.com", [], False),
    ("registry.example.com:5000", ["registry.example.com:5000"], True),
    ("10.1.2.3:5000", ["10.0.0.0/8"], True), ("10.1.2.3:5000", ["192.168.0.0/16"], False),
    ("myhost:80", ["myhost"], True), ("myhost:80", ["bad/cidr/x"], False),
])
def test_insecure_registries_are_loopback_or_listed(host: str, listed: list[str], expected: bool) -> None:
    assert is_insecure(host, listed) is expected


def test_docker_hub_names_are_served_by_registry_1() -> None:
    assert registry_host("docker.io") == "registry-1.docker.io"
    assert registry_host("localhost:5000") == "localhost:5000"


def _index(*platforms: tuple[str, str]) -> dict:
    return {"manifests": [{"digest": f"sha256:{i:064x}", "platform": {"os": o, "architecture": a}}
                          for i, (o, a) in enumerate(platforms)]}


def test_platform_is_the_hosts_then_amd64() -> None:
    index = _index(("linux", "arm64"), ("linux", "amd64"), ("windows", "amd64"))
    assert pick_platform(index, "linux", "arm64")["platform"]["architecture"] == "arm64"
    assert pick_platform(index, "linux", "s390x")["platform"]["architecture"] == "amd64"
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        pick_platform(_index(("linux", "arm64")), "linux", "s390x")


def test_registry_auth_header_decodes_with_or_without_padding() -> None:
    raw = json.dumps({"username": "alice", "password": "pw?", "serveraddress": "localhost:5000"}).encode()
    for header in (base64.urlsafe_b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert credentials_from_header(header) == Credentials("alice", "pw?")
    auth_only = base64.urlsafe_b64encode(json.dumps({"auth": base64.b64encode(b"bob:x:y").decode()}).encode())
    assert credentials_from_header(auth_only.decode()) == Credentials("bob", "x:y")
    assert credentials_from_header("e30=") is None  # {} : anonymous
    assert credentials_from_header("!!not base64!!") is None
    assert credentials_from_header(None) is None


def test_basic_authorization_value() -> None:
    assert Credentials("alice", "s3cret").basic() == "Basic YWxpY2U6czNjcmV0"


@pytest.mark.parametrize("name, tag, expected", [
    ("busybox", "", "docker.io/library/busybox"),
    ("busybox", "1.36", "docker.io/library/busybox:1.36"),
    ("localhost:5000/x/y", "v1", "localhost:5000/x/y:v1"),
    ("localhost:5000/x", "sha256:" + "a" * 64, "localhost:5000/x@sha256:" + "a" * 64),
    ("localhost:5000/x@sha256:" + "b" * 64, "", "localhost:5000/x@sha256:" + "b" * 64),
])
def test_pull_reference_from_fromimage_and_tag(name: str, tag: str, expected: str) -> None:
    assert distribution.pull_reference(name, tag).full() == expected


def test_pull_reference_errors_are_dockers() -> None:
    with pytest.raises(BadRequest, match="invalid reference format: repository name must be lowercase"):
        distribution.pull_reference("Busybox")
    with pytest.raises(BadRequest, match="invalid tag format"):
        distribution.pull_reference("busybox", "bad tag")


def test_progress_bar_is_dockers_fifty_columns() -> None:
    assert distribution.progress_bar(0, 2000) == "[>" + " " * 50 + "]       0B/2kB"
    assert distribution.progress_bar(1000, 2000) == "[" + "=" * 25 + ">" + " " * 25 + "]      1kB/2kB"
    assert distribution.progress_bar(2000, 2000) == "[" + "=" * 50 + ">]      2kB/2kB"


def test_messages_have_dockers_shapes() -> None:
    assert distribution.message("Digest: sha256:x") == {"status": "Digest: sha256:x"}
    assert distribution.message("Pull complete", "abc") == {"status": "Pull complete", "progressDetail": {},
                                                           "id": "abc"}
    downloading = distribution.message("Downloading", "abc", 5, 10)
    assert downloading["progressDetail"] == {"current": 5, "total": 10}
    assert downloading["id"] == "abc" and downloading["progress"].startswith("[")


def test_layer_compression_is_deterministic(tmp_path: Path) -> None:
    tar = tmp_path / "layer.tar"
    tar.write_bytes(b"some layer bytes " * 5000)
    first, second = io.BytesIO(), io.BytesIO()
    with tar.open("rb") as a, tar.open("rb") as b:
        assert distribution.compress_layer(a, first) == distribution.compress_layer(b, second)
    assert first.getvalue() == second.getvalue()
    assert gzip.decompress(first.getvalue()) == tar.read_bytes()
    assert first.getvalue()[4:8] == b"\0\0\0\0"  # mtime 0
    assert first.getvalue()[3] & 0x08 == 0  # no file name


def test_schema2_manifest_layout() -> None:
    data = distribution.schema2_manifest({"mediaType": "c", "size": 1, "digest": "sha256:c"},
                                         [{"mediaType": "l", "size": 2, "digest": "sha256:l"}])
    assert data.decode().startswith('{\n   "schemaVersion": 2,\n   "mediaType": '
                                    '"application/vnd.docker.distribution.manifest.v2+json",\n   "config": {')
    assert list(json.loads(data)) == ["schemaVersion", "mediaType", "config", "layers"]


@pytest.mark.parametrize("server, domain", [
    ("https://index.docker.io/v1/", "docker.io"), ("", "docker.io"), ("localhost:5000", "localhost:5000"),
    ("http://127.0.0.1:5000/", "127.0.0.1:5000"), ("registry-1.docker.io", "docker.io"),
])
def test_auth_server_address_to_registry(server: str, domain: str) -> None:
    assert registry_domain(server) == domain


def test_keyed_locks_serialise_one_key_and_forget_it() -> None:
    locks = distribution.KeyedLocks()
    order: list[str] = []
    with locks.hold("a"):
        waiter = threading.Thread(target=lambda: _hold(locks, "a", order))
        waiter.start()
        with locks.hold("b"):  # another key is free
            order.append("b")
        while locks._locks["a"][1] < 2:  # until the waiter queues on "a"
            time.sleep(0.001)
        order.append("a1")
    waiter.join()
    assert order == ["b", "a1", "a2"]
    assert len(locks) == 0


def _hold(locks: distribution.KeyedLocks, key: str, order: list[str]) -> None:
    with locks.hold(key):
        order.append("a2")


def test_blob_map_remembers_gzip_blobs_per_layer(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    blobs = distribution.BlobMap(store)
    assert blobs.blobs("sha256:aa") == []
    blobs.remember("sha256:aa", "sha256:c1", 10)
    blobs.remember("sha256:aa", "sha256:c1", 10)
    blobs.remember("sha256:aa", "sha256:c2", 12)
    assert distribution.BlobMap(store).blobs("sha256:aa") == [("sha256:c1", 10), ("sha256:c2", 12)]
    assert distribution.BlobMap(store).blobs("sha256:bb") == []


def test_error_lines_are_dockerds() -> None:
    """The docker CLI raises a stream's `errorDetail`, and exits with a failed build step's code."""
    assert error_line("denied") == {"errorDetail": {"message": "denied"}, "error": "denied"}
    assert json.dumps(error_line("exit 3", 3)) == \
        '{"errorDetail": {"code": 3, "message": "exit 3"}, "error": "exit 3"}'
