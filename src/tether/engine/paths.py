"""Where tetherd keeps things: persistent records under the data root, runtime state under the exec root."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
