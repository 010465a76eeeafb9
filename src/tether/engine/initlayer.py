"""The init layer: what dockerd puts between an image and a container's own layer.

runc bind-mounts hosts, hostname and resolv.conf onto files that must exist; made in the
container's own layer, they would show in `docker diff` (with their `/etc` modified) and in an
export. dockerd makes them in a layer of their own under the container's, and so does tether.
Unlike dockerd's (whose /etc is always 0755 root, hiding the image's), this layer's /etc takes the
owner, mode and times of the image's own /etc, so the container sees its image's directory.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

MOUNT_POINTS = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def ensure(layer: Path, image_lowers: list[Path] = ()) -> Path:
    """The layer at `layer`, made once (in a temporary sibling renamed into place, so a crash
    never leaves half of it). `image_lowers`, top first, give /etc its attributes."""
    if layer.is_dir():
        return layer
    tmp = layer.with_name(layer.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    etc = tmp / "etc"
    etc.mkdir(parents=True)
    os.chmod(etc, 0o755)
    for point in MOUNT_POINTS:
        fd = os.open(tmp / point, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        os.chmod(tmp / point, 0o644)
    _copy_dir_attributes(_image_etc(image_lowers), etc)
    os.rename(tmp, layer)
    return layer


def _image_etc(image_lowers: list[Path]) -> Path | None:
    """The image's /etc as the container would see it: the topmost layer that has an entry
    there decides; None when that entry is no directory or no layer has one."""
    for lower in image_lowers:
        etc = lower / "etc"
        if os.path.lexists(etc):
            return etc if etc.is_dir() and not etc.is_symlink() else None
    return None


def _copy_dir_attributes(source: Path | None, target: Path) -> None:
    if source is None:
        return
    st = os.lstat(source)
    os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
