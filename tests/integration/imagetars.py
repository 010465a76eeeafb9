"""Image archives for the archive tests: hand-made layers and `docker save` archives, an OCI
image of several layers with whiteouts built by umoci, and file trees read from a directory or
a tar in one comparable form."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")


def layer_tar(*entries: tuple[str, bytes, dict]) -> bytes:
    """A layer from (name, tar type, attributes), with `data` among the attributes of files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, attrs in entries:
            attrs = dict(attrs)
            info = tarfile.TarInfo(name)
            info.type = kind
            data = attrs.pop("data", b"")
            info.size = len(data)
            for key, value in attrs.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def save_archive(layers: list[bytes], tag: str, cmd: list[str]) -> bytes:
    """A `docker save` archive (manifest.json layout) of one image made of `layers`."""
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    files = {f"{d[7:]}/layer.tar": data for d, data in zip(diff_ids, layers)}
    files["config.json"] = config
    files["manifest.json"] = json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                          "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]).encode()
    return layer_tar(*[(name, tarfile.REGTYPE, {"data": data}) for name, data in files.items()])


def directory_tar(root: Path) -> bytes:
    """A tar of the directory `root`, names relative to it (an OCI layout as an archive)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buf.getvalue()


def _umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True, capture_output=True, timeout=120)


def _write(path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, *owner)
    os.chmod(path, mode)


def build_umoci_image(work: Path) -> tuple[Path, Path]:
    """An OCI layout `work/oci` (tag `img`) of three layers, and umoci's own unpacking of it.

    Layer 1: busybox, files of several modes and owners, symlinks, hard links, a fifo.
    Layer 2 (umoci's diff): changed and new files (below `etc`, which it does not list), a file
    and a directory removed (`.wh.`).
    Layer 3 (hand-made, added raw): an opaque directory (`.wh..wh..opq`) and a removed link.
    Returns (layout dir, umoci's unpacked rootfs).
    """
    layout, bundle = work / "oci", work / "bundle"
    _umoci("init", "--layout", str(layout))
    _umoci("new", "--image", f"{layout}:img")
    _umoci("unpack", "--image", f"{layout}:img", str(bundle))
    rootfs = bundle / "rootfs"
    _write(rootfs / "bin/busybox", BUSYBOX.read_bytes(), 0o755)
    os.symlink("busybox", rootfs / "bin/sh")
    os.symlink("busybox", rootfs / "bin/cat")
    _write(rootfs / "etc/a", b"one\n")
    _write(rootfs / "etc/private", b"p\n", 0o600, (1000, 1000))
    _write(rootfs / "etc/suid", b"s\n", 0o4755)
    _write(rootfs / "data/hard1", b"linked\n", 0o640, (5, 6))
    os.link(rootfs / "data/hard1", rootfs / "data/hard2")
    os.link(rootfs / "data/hard1", rootfs / "data/hard3")
    os.symlink("/etc/a", rootfs / "data/abs")
    os.symlink("../etc/a", rootfs / "data/rel")
    os.mkfifo(rootfs / "data/fifo", 0o644)
    _write(rootfs / "gone.txt", b"bye\n")
    _write(rootfs / "gone-dir/sub/y", b"y\n")
    _write(rootfs / "opq/a", b"a\n")
    _write(rootfs / "opq/sub/c", b"c\n")
    (rootfs / "keep").mkdir(mode=0o750)
    os.chown(rootfs / "keep", 5, 6)
    os.chmod(rootfs / "keep", 0o750)
    os.chown(rootfs / "etc", 3, 4)  # umoci's next diff lists etc/a but not etc: implied there
    os.chmod(rootfs / "etc", 0o751)
    os.utime(rootfs / "etc", (1_500_000_000, 1_500_000_000))
    _umoci("repack", "--refresh-bundle", "--image", f"{layout}:img", str(bundle))
    (rootfs / "gone.txt").unlink()
    shutil.rmtree(rootfs / "gone-dir")
    _write(rootfs / "etc/a", b"two\n")
    os.chown(rootfs / "etc/private", 2000, 2000)
    os.chmod(rootfs / "etc/private", 0o640)
    _write(rootfs / "new/file", b"new\n", 0o600)
    _umoci("repack", "--refresh-bundle", "--image", f"{layout}:img", str(bundle))
    third = work / "layer3.tar"
    third.write_bytes(layer_tar(
        ("opq", tarfile.DIRTYPE, {"mode": 0o755, "mtime": 1_600_000_000}),
        ("opq/.wh..wh..opq", tarfile.REGTYPE, {}),
        ("opq/fresh", tarfile.REGTYPE, {"data": b"fresh\n", "mode": 0o644, "mtime": 1_600_000_000}),
        ("data", tarfile.DIRTYPE, {"mode": 0o755, "mtime": 1_600_000_000}),
        ("data/.wh.hard2", tarfile.REGTYPE, {}),
    ))
    _umoci("raw", "add-layer", "--image", f"{layout}:img", str(third))
    _umoci("config", "--image", f"{layout}:img", "--config.cmd", "/bin/sh")
    _umoci("gc", "--layout", str(layout))
    unpacked = work / "unpacked"
    _umoci("unpack", "--image", f"{layout}:img", str(unpacked))
    return layout, unpacked / "rootfs"


Entry = tuple[Any, ...]


def tree_of_dir(root: Path) -> dict[str, Entry]:
    """Every entry below `root`: type, mode, owner, mtime, and content digest or link target."""
    tree: dict[str, Entry] = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        rel = str(path.relative_to(root))
        if stat.S_ISREG(st.st_mode):
            detail: Any = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            detail = os.readlink(path)
        else:
            detail = None
        tree[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                     int(st.st_mtime), detail)
    return tree


_TAR_TYPES = {tarfile.REGTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
              tarfile.FIFOTYPE: stat.S_IFIFO, tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK}


def tree_of_tar(data: bytes) -> tuple[dict[str, Entry], list[set[str]]]:
    """The same view of a tar (hard links resolved to their target's entry), and its groups of
    hard-linked names."""
    tree: dict[str, Entry] = {}
    links: dict[str, set[str]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            name = m.name.rstrip("/")
            if m.islnk():
                tree[name] = tree[m.linkname.rstrip("/")]
                links.setdefault(m.linkname, {m.linkname}).add(name)
                continue
            if m.isreg():
                detail: Any = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
            elif m.issym():
                detail = m.linkname
            else:
                detail = None
            # Docker's tars also carry the type bits in the mode field (Go 1.8's habit)
            tree[name] = (_TAR_TYPES[m.type], m.mode & 0o7777, m.uid, m.gid, int(m.mtime), detail)
    return tree, list(links.values())


def hardlink_groups(root: Path) -> list[set[str]]:
    """Names below `root` that share an inode, grouped (only groups of two or more)."""
    groups: dict[tuple[int, int], set[str]] = {}
    for path in root.rglob("*"):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), set()).add(str(path.relative_to(root)))
    return [g for g in groups.values() if len(g) > 1]
