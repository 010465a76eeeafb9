"""Archives between tether and a real Docker 20.10: what one saves the other loads with the same
image ID, config and files, containers run from it, exports agree, and hostile layers are
refused or neutralised as Docker does."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

import imagetars
from reference import ReferenceEngine, reference_fixture

# What Docker's per-container init layer adds to every container's filesystem; tether has no
# init layer. The directories it makes when the image lacks them (or whose mtimes it changes)
# are compared without their mtimes, when tether's export has them.
DOCKER_INIT = {".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts",
               "etc/resolv.conf", "etc/mtab"}
INIT_DIRS = {"dev", "etc", "proc", "sys"}


ref = reference_fixture("i6c-archives")


def inspect(run, name: str) -> dict:
    r = run("image", "inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def exported_tree(run, image: str) -> dict:
    """The export of a fresh container of `image`."""
    name = f"i6cexp{uuid.uuid4().hex[:8]}"
    assert run("create", "--name", name, image).returncode == 0
    try:
        r = run("export", name)
        assert r.returncode == 0, r.stderr
    finally:
        run("rm", "-f", name)
    return imagetars.tree_of_tar(r.stdout)[0]


def assert_same_export(ref: ReferenceEngine, daemon, image: str, implied: frozenset[str] = frozenset()) -> None:
    """tether's export is Docker's without the init layer's additions. `implied`: directories a
    layer lists files in but not itself; Docker's overlay2 unpacks each layer alone and shows a
    fresh 0755 root-owned directory there, tether shows the directory of the layers below (as
    umoci does: see test_archives.py)."""
    docker, tether = exported_tree(ref.docker, image), exported_tree(daemon.docker, image)
    for path in implied:
        assert docker[path][1:4] == (0o755, 0, 0) and tether[path][1:4] != (0o755, 0, 0), path
    skip = DOCKER_INIT | INIT_DIRS | implied
    assert {p: e for p, e in tether.items() if p not in skip} == \
        {p: e for p, e in docker.items() if p not in skip}
    for path in (INIT_DIRS - implied) & set(tether):
        assert tether[path][:4] == docker[path][:4], path


def assert_same_image(ref: ReferenceEngine, daemon, name: str, implied: frozenset[str] = frozenset()) -> None:
    docker, tether = inspect(ref.docker, name), inspect(daemon.docker, name)
    for key in ("Id", "Config", "ContainerConfig", "RootFS", "Architecture", "Os", "Created", "Comment"):
        assert tether[key] == docker[key], key
    assert_same_export(ref, daemon, name, implied)


def test_tether_save_loads_into_docker(daemon, ref) -> None:
    """A three-layer OCI image with whiteouts and an opaque dir: umoci -> tether -> Docker."""
    work = Path(tempfile.mkdtemp(prefix="tether-i6c-"))
    try:
        layout, _ = imagetars.build_umoci_image(work)
        r = daemon.docker("load", input=imagetars.directory_tar(layout))
        image_id = r.stdout.decode().split()[-1]
    finally:
        shutil.rmtree(work)
    tag = "i6c-multi:1"
    assert daemon.docker("tag", image_id, tag).returncode == 0
    saved = daemon.docker("save", tag)
    assert saved.returncode == 0, saved.stderr
    r = ref.docker("load", input=saved.stdout)
    assert (r.returncode, r.stdout) == (0, f"Loaded image: {tag}\n".encode()), r.stderr
    assert_same_image(ref, daemon, tag, implied=frozenset({"etc"}))
    # (not /etc, where each engine's runtime adds its own hosts, hostname and resolv.conf; not
    # `..`, the root, whose mtime is when the runtime made its mount points)
    listing = ["run", "--rm", tag, "/bin/busybox", "ls", "-lAn", "--full-time", "/data", "/opq", "/new", "/keep"]
    docker_ls, tether_ls = ref.docker(*listing), daemon.docker(*listing)
    assert docker_ls.returncode == 0 and tether_ls.stdout == docker_ls.stdout, docker_ls.stderr


def test_docker_save_loads_into_tether(daemon, ref) -> None:
    """A committed image (busybox plus a layer that adds and removes files), saved by Docker
    20.10 in its legacy layout."""
    r = ref.docker("run", "--name", "i6c-commit", "busybox", "sh", "-c",
                   "mkdir /data && echo hi > /data/x && chmod 600 /data/x && rm /etc/group")
    assert r.returncode == 0, r.stderr
    assert ref.docker("commit", "-c", "ENV FROM_COMMIT=1", "i6c-commit", "i6c-committed:2").returncode == 0
    saved = ref.docker("save", "i6c-committed:2")
    names = tarfile.open(fileobj=io.BytesIO(saved.stdout)).getnames()
    assert "repositories" in names and any(n.endswith("/layer.tar") for n in names)  # the legacy layout
    r = daemon.docker("load", input=saved.stdout)
    assert (r.returncode, r.stdout) == (0, b"Loaded image: i6c-committed:2\n"), r.stderr
    assert_same_image(ref, daemon, "i6c-committed:2")
    command = ["run", "--rm", "i6c-committed:2", "sh", "-c",
               "cat /data/x; test -e /etc/group || echo no group; echo $FROM_COMMIT"]
    docker_out, tether_out = ref.docker(*command), daemon.docker(*command)
    assert tether_out.returncode == 0 and tether_out.stdout == docker_out.stdout == b"hi\nno group\n1\n"


def hostile_archives() -> dict[str, bytes]:
    cmd = ["/escape"]
    return {
        "dotdot": imagetars.save_archive([imagetars.layer_tar(
            ("../escape", tarfile.REGTYPE, {"data": b"x"}))], "i6c-hostile:dotdot", cmd),
        "symparent": imagetars.save_archive([imagetars.layer_tar(
            ("link", tarfile.SYMTYPE, {"linkname": "/tmp"}),
            ("link/escape", tarfile.REGTYPE, {"data": b"x"}))], "i6c-hostile:symparent", cmd),
        "hardout": imagetars.save_archive([imagetars.layer_tar(
            ("hard", tarfile.LNKTYPE, {"linkname": "../../etc/passwd"}))], "i6c-hostile:hardout", cmd),
        "blockdev": imagetars.save_archive([imagetars.layer_tar(
            ("sda", tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0, "mode": 0o666}))],
            "i6c-hostile:blockdev", cmd),
    }


def test_hostile_layers_refused_or_neutralised_as_docker(daemon, ref) -> None:
    outcomes = {}
    for case, data in hostile_archives().items():
        docker_load, tether_load = ref.docker("load", input=data), daemon.docker("load", input=data)
        outcomes[case] = (docker_load.returncode, tether_load.returncode)
    # `..` stops at the layer's root on both; a parent symlink and a hard link out are refused on
    # both; Docker keeps a block device (its device cgroup stops its use), tether refuses it.
    assert outcomes == {"dotdot": (0, 0), "symparent": (1, 1), "hardout": (1, 1), "blockdev": (0, 1)}
    assert_same_export(ref, daemon, "i6c-hostile:dotdot")
    escaped = [p for p in daemon.data_root.rglob("escape") if "/diff/" not in str(p)]
    assert escaped == []
    r = daemon.docker("load", input=hostile_archives()["blockdev"])
    assert b"block device 8:0 is not allowed in a layer" in r.stderr
