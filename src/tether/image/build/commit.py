"""Committing a filesystem change as an image: the overlay upper dir as a layer tar, and the image
config the legacy builder and `docker commit` write around it.

The upper dir already is the layer in overlayfs form; a layer tar needs Docker's form back:
a whiteout (0/0 character device) becomes an empty `.wh.<name>` entry, an opaque directory
(`trusted.overlay.opaque=y`) gets a `.wh..wh..opq` entry inside it, as moby's overlay2 driver
writes them when it exports an upper dir.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import tether
from tether.image.archive import tar_entry
from tether.image.layers import OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX
from tether.image.store import Image, ImageStore, container_config, diff_ids_of, go_arch, rfc3339_nano
from tether.runtime import rootfd
from tether.runtime.rootfd import Root


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.mode = int(st.st_mtime), 0, 0, 0o644
    return info


# What runc creates in a rootfs to mount over when the image lacks it: Docker keeps these in the
# container's init layer, below its RW layer, so they are never part of a commit.
MOUNT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
MOUNT_DIRS = ("proc", "sys", "dev")


def _in_lowers(rel: str, lowers: list[Path]) -> os.stat_result | None:
    for lower in lowers:
        try:
            return os.lstat(lower / rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


def mount_artifacts(upper: Path, lowers: list[Path]) -> set[str]:
    """The entries of a container's upper dir that only exist because mounts needed a target
    (empty files and directories the image did not have), and the directories copied up for
    them alone: left out of a committed layer, as Docker's init layer keeps them out."""
    found: set[str] = set()
    for rel, kind in [*((f, stat.S_ISREG) for f in MOUNT_FILES), *((d, stat.S_ISDIR) for d in MOUNT_DIRS)]:
        try:
            st = os.lstat(upper / rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
        empty = st.st_size == 0 if kind is stat.S_ISREG else not any((upper / rel).iterdir())
        if kind(st.st_mode) and empty and _in_lowers(rel, lowers) is None:
            found.add(rel)
    for parent in {os.path.dirname(rel) for rel in found} - {""}:
        st, low = os.lstat(upper / parent), _in_lowers(parent, lowers)
        only_artifacts = all(f"{parent}/{name}" in found for name in os.listdir(upper / parent))
        unchanged = low is None or (st.st_mode, st.st_uid, st.st_gid) == (low.st_mode, low.st_uid, low.st_gid)
        if only_artifacts and unchanged and not _is_opaque(upper / parent):
            found.add(parent)
    return found


def write_layer(upper: Path, out: BinaryIO, skip: frozenset[str] | set[str] = frozenset()) -> int:
    """Tar the upper dir `upper` to `out` in Docker's layer form (whiteouts converted),
    depth first in name order, numeric owners, hard links kept as links, file capabilities
    kept; `skip` lists relative paths left out (mount artifacts). Returns the number of entries:
    with none, the step changed nothing and Docker records an empty layer instead. A running
    container writes to its upper dir while it is committed, so it is walked and read by fds
    (runtime/rootfd.py): a symlink swapped in is committed as the symlink it is."""
    count = 0
    seen: dict[tuple[int, int], str] = {}
    with Root.open(upper) as root, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        top = root.open_at("/", os.O_PATH | os.O_DIRECTORY)
        try:
            for rel, st, fd in rootfd.walk(top, ""):
                if not rel or rel in skip:
                    continue
                parent, name = posixpath.split(rel)
                if _is_whiteout(st):
                    tar.addfile(_marker(posixpath.join(parent, WHITEOUT_PREFIX + name), st))
                    count += 1
                    continue
                info = tar_entry(rel, st, fd, seen)
                if info is None:
                    continue
                info.mtime = st.st_mtime  # to the nanosecond, in a PAX record
                if info.isreg():
                    with os.fdopen(rootfd.open_regular(fd), "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
                count += 1
                if stat.S_ISDIR(st.st_mode) and rootfd.getxattr(fd, OPAQUE_XATTR) == b"y":
                    tar.addfile(_marker(f"{rel}/{OPAQUE_MARKER}", st))
                    count += 1
        finally:
            os.close(top)
    return count


def image_config(parent: dict[str, Any] | None, config: dict[str, Any], container_cfg: dict[str, Any],
                 container_id: str, created_by: str, layer_diff_id: str | None,
                 comment: str = "", author: str = "") -> bytes:
    """The image config of a step or commit on top of `parent` (None for scratch): the new
    layer (if any) appended to rootfs, one history entry (`empty_layer` without a layer).
    Keys sorted as Docker writes them; the bytes the image ID hashes."""
    created = rfc3339_nano(time.time_ns())
    diff_ids = list(((parent or {}).get("rootfs") or {}).get("diff_ids") or [])
    if layer_diff_id is not None:
        diff_ids.append(layer_diff_id)
    entry: dict[str, Any] = {"created": created}
    if author:
        entry["author"] = author
    if created_by:
        entry["created_by"] = created_by
    if comment:
        entry["comment"] = comment
    if layer_diff_id is None:
        entry["empty_layer"] = True
    result: dict[str, Any] = {
        "architecture": (parent or {}).get("architecture") or go_arch(),
        "config": container_config(config), "container": container_id,
        "container_config": container_config(container_cfg), "created": created,
        "docker_version": tether.__version__,
        "history": [*((parent or {}).get("history") or []), entry],
        "os": (parent or {}).get("os") or "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if author:
        result["author"] = author
    if comment:
        result["comment"] = comment
    return json.dumps(result, sort_keys=True, separators=(",", ":")).encode()


def _digest(fileobj: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fileobj.read(1 << 20):
        digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def commit(store: ImageStore, parent: Image | None, config: dict[str, Any],
           container_cfg: dict[str, Any], container_id: str, layer: BinaryIO | None,
           comment: str = "", author: str = "") -> Image:
    """Store a step's or a commit's image on `parent`: its layer tar (None: an empty layer),
    its config, and the parent link the build cache and `docker history` follow. The history
    entry's `created_by` is the recorded command, ContainerConfig.Cmd joined, as Docker's."""
    diff_id = None
    if layer is not None:
        diff_id = _digest(layer)
        layer.seek(0)
    created_by = " ".join(container_cfg.get("Cmd") or [])
    raw = image_config(parent.config if parent else None, config, container_cfg, container_id,
                       created_by, diff_id, comment=comment, author=author)
    stack = diff_ids_of(raw)
    with store.keeping_layers(stack):  # an rmi of the parent meanwhile keeps them
        if layer is not None and diff_id is not None and not store.has_layer(diff_id):
            store.put_layer(layer, diff_id, below=stack[:-1])
        image = store.add_image_from_layers(raw)
    if parent is not None:
        store.set_parent(image.id, parent.id)
    return store.resolve(image.id)


def commit_upper(store: ImageStore, upper: Path, parent: Image, config: dict[str, Any],
                 container_cfg: dict[str, Any], container_id: str, comment: str = "",
                 author: str = "") -> Image:
    """`commit` with the layer taken from a container's overlay upper dir (docker commit, a
    RUN step), its mount artifacts left out."""
    skip = mount_artifacts(upper, store.lower_dirs(parent))
    with tempfile.TemporaryFile(dir=store.root) as layer:
        changed = write_layer(upper, layer, skip)
        layer.seek(0)
        return commit(store, parent, config, container_cfg, container_id, layer if changed else None,
                      comment, author)
