"""save / load / export / import against a real tetherd: an OCI image built by umoci comes out
of tether exactly as umoci unpacks it, archives go round trips through the tether CLI, the
docker CLI and the docker SDK, and imports come from a file, stdin and a URL on loopback."""
from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

import imagetars
from harness import BIN
from tether.engine.initlayer import MOUNT_POINTS


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def umoci_image(daemon) -> Iterator[tuple[str, Path]]:
    """The umoci-built image loaded into tether (by ID: umoci names it by a bare tag), and
    umoci's own unpacking of it."""
    work = Path(tempfile.mkdtemp(prefix="tether-umoci-"))
    try:
        layout, rootfs = imagetars.build_umoci_image(work)
        r = daemon.docker("load", input=imagetars.directory_tar(layout))
        assert r.returncode == 0, r.stderr
        line = r.stdout.decode()
        assert line.startswith("Loaded image ID: sha256:"), line
        yield line.split()[-1], rootfs
    finally:
        shutil.rmtree(work)


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tether-archives-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_layers_and_whiteouts_come_out_as_umoci_unpacks_them(daemon, umoci_image) -> None:
    image_id, rootfs = umoci_image
    name = unique("umoci-")
    assert daemon.docker("create", "--name", name, image_id).returncode == 0
    try:
        r = daemon.docker("export", name)
        assert r.returncode == 0, r.stderr
        exported, links = imagetars.tree_of_tar(r.stdout)
        expected = imagetars.tree_of_dir(rootfs)
        for point in MOUNT_POINTS:  # the container's init layer, which an export has as Docker's
            assert exported.pop(point)[:2] == (stat.S_IFREG, 0o644)
        assert exported == expected
        assert sorted(map(sorted, links)) == sorted(map(sorted, imagetars.hardlink_groups(rootfs))) \
            == [["data/hard1", "data/hard3"]]
        # the image really has what the layers say: removals, an opaque dir, owners, modes
        assert {"gone.txt", "gone-dir", "data/hard2", "opq/a", "opq/sub"}.isdisjoint(exported)
        assert {"opq/fresh", "new/file", "data/fifo", "keep"} <= set(exported)
        assert exported["etc/private"][1:4] == (0o640, 2000, 2000)
        assert exported["etc"][1:5] == (0o751, 3, 4, 1_500_000_000)  # implied by layer 2
        assert exported["etc/suid"][1] == 0o4755 and exported["data/abs"][-1] == "/etc/a"
    finally:
        daemon.docker("rm", "-f", name)
    r = daemon.docker("run", "--rm", image_id, "cat", "/etc/a", "/opq/fresh")
    assert (r.returncode, r.stdout) == (0, b"two\nfresh\n"), r.stderr


def test_cli_save_load_round_trip(daemon, umoci_image, tmp_dir) -> None:
    image_id, _ = umoci_image
    tag = unique("roundtrip") + ":1"
    assert daemon.tether("tag", image_id, tag).returncode == 0
    archive_path = tmp_dir / "saved.tar"
    r = daemon.tether("save", "-o", str(archive_path), tag)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert not [p for p in tmp_dir.iterdir() if p.name != "saved.tar"]  # no temporary left
    r = daemon.tether("rmi", tag)
    assert r.returncode == 0, r.stderr
    r = daemon.tether("load", "-i", str(archive_path))
    assert (r.returncode, r.stdout.decode()) == (0, f"Loaded image: {tag}\n"), r.stderr
    assert daemon.api("GET", f"/images/{tag}/json")[1]["Id"] == image_id
    r = daemon.tether("load", "-q", input=archive_path.read_bytes())  # from stdin
    assert (r.returncode, r.stdout.decode()) == (0, f"Loaded image: {tag}\n"), r.stderr
    r = daemon.docker("save", tag)  # to stdout: the same bytes as the file
    assert r.returncode == 0 and r.stdout == archive_path.read_bytes()
    daemon.tether("rmi", tag)


def test_save_errors_and_an_unwritable_output(daemon, tmp_dir) -> None:
    r = daemon.tether("save", "-o", str(tmp_dir / "x.tar"), "nosuch:1")
    assert (r.returncode, r.stderr) == (1, b"Error response from daemon: reference does not exist\n")
    assert list(tmp_dir.iterdir()) == []
    r = daemon.docker("save", "nosuchrepo")
    assert r.stderr == b"Error response from daemon: No such image: nosuchrepo\n"
    r = daemon.tether("load", input=b"not an archive" * 100)
    assert (r.returncode, r.stderr) == (
        1, b"Error processing tar file(exit status 1): archive/tar: invalid tar header\n")


def test_save_and_export_refuse_a_terminal(daemon) -> None:
    """As docker: a tar is never written to a terminal (`script` gives the command a pty)."""
    for args in (["save", "busybox"], ["export", "whatever"]):
        command = " ".join([str(BIN / "tether"), "-H", daemon.host, *args]) + "; echo rc=$?"
        r = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, timeout=60)
        assert r.stdout.replace(b"\r", b"") == b"cowardly refusing to save to a terminal. Use the -o flag or " \
            b"redirect\nrc=1\n"


def test_sdk_save_and_load(daemon) -> None:
    client = daemon.sdk()
    try:
        image = client.images.get("busybox:latest")
        data = b"".join(image.save())  # by ID: an untagged archive
        names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
        assert {"index.json", "manifest.json", "oci-layout"} <= set(names)
        [loaded] = client.images.load(data)
        assert loaded.id == image.id
        tag = unique("sdkload") + ":2"
        image.tag(tag)
        named = b"".join(client.api.get_image(tag))  # by tag: the archive names it
        client.images.remove(tag)
        [loaded] = client.images.load(named)
        assert loaded.id == image.id and tag in loaded.tags
        client.images.remove(tag)
    finally:
        client.close()


def test_export_of_a_running_container_has_its_changes(daemon, tmp_dir) -> None:
    name = unique("exp-")
    r = daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                      "echo changed > /etc/motd; rm /etc/group; sleep 60")
    assert r.returncode == 0, r.stderr
    try:
        for _ in range(100):
            r = daemon.docker("export", name)
            tree, _ = imagetars.tree_of_tar(r.stdout)
            if "etc/motd" in tree:
                break
            time.sleep(0.05)
        assert r.returncode == 0 and "etc/motd" in tree and "etc/group" not in tree
        assert "bin/busybox" in tree and not any(n.startswith("proc/") for n in tree)
        r = daemon.tether("export", "-o", str(tmp_dir / "fs.tar"), name)
        assert (r.returncode, r.stdout) == (0, b"")
        assert imagetars.tree_of_tar((tmp_dir / "fs.tar").read_bytes())[0]["etc/motd"][-1] \
            == tree["etc/motd"][-1]
        fifo = tmp_dir / "fifo"  # a target that is not a regular file is written through
        os.mkfifo(fifo)
        with open(tmp_dir / "from-fifo.tar", "wb") as sink:
            reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
            r = daemon.tether("export", "-o", str(fifo), name)
            reader.wait(30)
        assert r.returncode == 0 and stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert "etc/motd" in imagetars.tree_of_tar((tmp_dir / "from-fifo.tar").read_bytes())[0]
    finally:
        daemon.docker("rm", "-f", name)
    r = daemon.docker("export", "nosuchcontainer")
    assert r.stderr == b"Error response from daemon: No such container: nosuchcontainer\n"


@pytest.fixture
def http_server(daemon, tmp_dir) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on loopback inside the daemon's namespace, serving `tmp_dir`."""
    code = ("import functools, http.server, sys\n"
            "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
            "server = http.server.HTTPServer(('127.0.0.1', 0), handler)\n"
            "print(server.server_port, flush=True)\n"
            "server.serve_forever()\n")
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{daemon.netns}", sys.executable, "-c", code,
                             str(tmp_dir)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", tmp_dir
    finally:
        proc.kill()
        proc.wait()


def test_import_from_url_file_and_stdin(daemon, http_server, tmp_dir) -> None:
    base_url, served = http_server
    cid = daemon.docker("create", "busybox").stdout.decode().strip()
    try:
        r = daemon.docker("export", cid)
    finally:
        daemon.docker("rm", cid)
    assert r.returncode == 0
    (served / "rootfs.tar").write_bytes(r.stdout)
    tag = unique("urlimp") + ":1"
    r = daemon.docker("import", "-c", "CMD [\"cat\", \"/etc/passwd\"]", f"{base_url}/rootfs.tar", tag)
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and lines[0] == f"Downloading from {base_url}/rootfs.tar", r.stderr
    assert lines[1].startswith("sha256:") and len(lines) == 2
    inspect = daemon.api("GET", f"/images/{tag}/json")[1]
    assert inspect["Id"] == lines[1] and inspect["Comment"] == f"Imported from {base_url}/rootfs.tar"
    r = daemon.docker("run", "--rm", tag)
    assert r.returncode == 0 and r.stdout.startswith(b"root:x:0:0:")
    r = daemon.docker("import", f"{base_url}/missing.tar")
    assert r.returncode == 1 and r.stderr.startswith(
        f"Error response from daemon: failed to GET {base_url}/missing.tar with status 404".encode())
    r = daemon.tether("import", "-m", "from stdin", "-", tag, input=(served / "rootfs.tar").read_bytes())
    assert r.returncode == 0 and r.stdout.decode().startswith("sha256:")
    assert daemon.api("GET", f"/images/{tag}/json")[1]["Comment"] == "from stdin"
    r = daemon.tether("image", "import", str(served / "rootfs.tar"), tag)
    assert r.returncode == 0 and r.stdout.decode().strip() == \
        daemon.api("GET", f"/images/{tag}/json")[1]["Id"]
    r = daemon.tether("import", str(tmp_dir / "nothing.tar"))
    assert r.stderr == f"open {tmp_dir / 'nothing.tar'}: no such file or directory\n".encode()
    daemon.tether("rmi", "-f", tag)
