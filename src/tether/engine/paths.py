"""Where tetherd keeps things: persistent records under the data root, runtime state under the exec root.

Both roots are private to root, as dockerd keeps its own. A container's filesystem (its merged
rootfs and upper dir) and every image layer lie under the data root with the owners and modes they
were given inside the container or the layer: a setuid-root file a container made, or an image
shipped, would run with euid 0 for any local user who could reach it. `DATA_ROOT_MODES` and
`EXEC_ROOT_MODES` close every way down to that content; the content keeps its own modes (a merged
dir shows its image's root mode, a volume's `_data` is what its containers see). `make_private`
applies them at start-up, so a root an older tetherd made with 0755 dirs is closed too, and the
services create their own per-item dirs with these modes from the start.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tether.rules.errors import hide_paths
from tether.image.layers import LAYER_DIR_MODE

# dockerd's modes: 0710 for the roots of containers and layers (root's group may pass, no one
# else), 0700 for metadata, 0701 for volumes (a volume's path can be reached, not listed).
CONTAINER_DIR_MODE = 0o710
VOLUME_DIR_MODE = 0o701
# Relative path (a `*` is every directory in its parent) -> mode, parents before children.
DATA_ROOT_MODES: tuple[tuple[str, int], ...] = (
    ("", 0o710), ("containers", 0o710), ("containers/*", CONTAINER_DIR_MODE),
    ("image", 0o700), ("image/layers", 0o710), ("image/layers/*", LAYER_DIR_MODE),
    ("volumes", 0o701), ("volumes/*", VOLUME_DIR_MODE), ("network", 0o750), ("builder", 0o700))
# The exec root stays traversable for the API socket that may live in it (the default one does);
# what runs containers (bundles, runc and conmon state, netns files) is closed.
EXEC_ROOT_MODES: tuple[tuple[str, int], ...] = (
    ("", 0o711), ("bundles", 0o700), ("runtime", 0o700), ("netns", 0o700))


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path

    @property
    def containers(self) -> Path:
        return self.data_root / "containers"

    @property
    def corrupt_containers(self) -> Path:
        """Where a container directory whose record cannot be read is moved at start-up."""
        return self.data_root / "corrupt" / "containers"

    @property
    def images(self) -> Path:
        return self.data_root / "image"

    @property
    def volumes(self) -> Path:
        return self.data_root / "volumes"

    @property
    def network(self) -> Path:
        return self.data_root / "network"

    @property
    def builder(self) -> Path:
        """Build workspaces: the build context and each RUN step's overlay."""
        return self.data_root / "builder"

    def hide(self, text: str) -> str:
        """An error text with the daemon's private paths hidden (errors.hide_paths): a path in
        a container's root filesystem becomes the path the container sees, any other path
        under the data or exec root `<host path>`; volumes' paths are public (inspect's
        Mountpoint shows them)."""
        rootfs = re.escape(str(self.containers)) + r"/[0-9a-f]{64}/rootfs(?=[/\s'\":,)]|$)(/?)"
        text = re.sub(rootfs, "/", text)
        return hide_paths(text, (str(self.data_root), str(self.exec_root)), (str(self.volumes),))

    @property
    def runtime(self) -> Path:
        return self.exec_root / "runtime"

    def container(self, cid: str) -> Path:
        """Record, per-container files (hosts, hostname, resolv.conf), log and overlay dirs."""
        return self.containers / cid

    def record(self, cid: str) -> Path:
        return self.container(cid) / "config.json"

    def rootfs(self, cid: str) -> Path:
        return self.container(cid) / "rootfs"

    def upper(self, cid: str) -> Path:
        return self.container(cid) / "fs" / "upper"

    def init_layer(self, cid: str) -> Path:
        """The mount points of hosts, hostname and resolv.conf, under the container's layer."""
        return self.container(cid) / "fs" / "init"

    def work(self, cid: str) -> Path:
        return self.container(cid) / "fs" / "work"

    def log(self, cid: str) -> Path:
        return self.container(cid) / "container.log"

    @property
    def pending_records(self) -> Path:
        """Containers' records while the data root cannot take them (a full disk)."""
        return self.exec_root / "records"

    def pending_record(self, cid: str) -> Path:
        return self.pending_records / f"{cid}.json"

    def bundle(self, cid: str) -> Path:
        return self.exec_root / "bundles" / cid

    def netns(self, cid: str) -> Path:
        return self.exec_root / "netns" / cid

    def views(self, cid: str) -> dict[str, str]:
        """The paths inspect reports for a container."""
        base = self.container(cid)
        return {"resolv": str(base / "resolv.conf"), "hostname": str(base / "hostname"),
                "hosts": str(base / "hosts"), "log": str(self.log(cid)),
                "rootfs": str(self.rootfs(cid)), "upper": str(self.upper(cid)),
                "work": str(self.work(cid))}


def make_private(paths: Paths) -> None:
    """Create the roots and their fixed dirs with their modes, and set the modes of those that
    exist (and of every container and layer dir), whatever an earlier daemon or admin left."""
    for root, modes in ((paths.data_root, DATA_ROOT_MODES), (paths.exec_root, EXEC_ROOT_MODES)):
        root.parent.mkdir(parents=True, exist_ok=True)
        for relative, mode in modes:
            parent, _, name = relative.rpartition("/")
            if name == "*":
                for entry in os.scandir(root / parent):
                    if entry.is_dir(follow_symlinks=False):
                        _set_mode(Path(entry.path), mode)
                continue
            path = root / relative
            try:
                os.mkdir(path, mode)
            except FileExistsError:
                _set_mode(path, mode)


def _set_mode(path: Path, mode: int) -> None:
    """chmod a directory of ours through an fd that cannot have followed a symlink."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
