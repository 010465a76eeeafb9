"""Where tetherd keeps things: persistent records under the data root, runtime state under the exec root."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tether.errors import hide_paths


@dataclass(frozen=True)
class Paths:
    data_root: Path
    exec_root: Path

    @property
    def containers(self) -> Path:
        return self.data_root / "containers"

    @property
    def images(self) -> Path:
        return self.data_root / "image"

    @property
    def volumes(self) -> Path:
        return self.data_root / "volumes"

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
