"""The init layer: what dockerd puts between an image and a container's own layer.

runc bind-mounts hosts, hostname and resolv.conf onto files that must exist; made in the
container's own layer, they would show in `docker diff` (with their `/etc` modified) and in an
export. dockerd makes them in a layer of their own under the container's, and so does tether.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

MOUNT_POINTS = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def ensure(layer: Path) -> Path:
    """The layer at `layer`, made once (in a temporary sibling renamed into place, so a crash
    never leaves half of it)."""
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
    os.rename(tmp, layer)
    return layer
