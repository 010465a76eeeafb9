"""System routes: ping, version, info: what clients ask before anything else."""
from __future__ import annotations

import asyncio
import os
import platform
import socket
from collections import Counter

import tether
from tether.api.http import API_VERSION, MIN_API_VERSION, Request, Response, Router, json_response
from tether.engine import diskusage, limits
from tether.engine.containers import ContainerService
from tether.image.store import ImageStore
from tether.rules.resources import HostFacts
from tether.runtime import cgroups

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


class SystemRoutes:
    def __init__(self, containers: ContainerService, images: ImageStore, daemon_id: str,
                 data_root: str, volumes_df: diskusage.VolumesDf | None = None) -> None:
        self.containers = containers
        self.images = images
        self.daemon_id = daemon_id
        self.data_root = data_root
        self.volumes_df = volumes_df  # the volume service's df items

    def register(self, router: Router) -> None:
        router.add("GET", "/_ping", self.ping)
        router.add("HEAD", "/_ping", self.ping)
        router.add("GET", "/version", self.version)
        router.add("GET", "/info", self.info)
        router.add("GET", "/system/df", self.df)

    async def ping(self, req: Request) -> Response:
        headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                   "Builder-Version": "1", "Swarm": "inactive"}
        return Response(200, b"OK", content_type="text/plain; charset=utf-8", headers=headers)

    async def version(self, req: Request) -> Response:
        uname = platform.uname()
        arch = _GO_ARCH.get(uname.machine, uname.machine)
        return json_response({
            "Platform": {"Name": "tether"},
            "Components": [{"Name": "Engine", "Version": tether.__version__,
                            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                        "Os": "linux", "Arch": arch,
                                        "KernelVersion": uname.release}}],
            "Version": tether.__version__, "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION, "GitCommit": "", "GoVersion": "python" +
            platform.python_version(), "Os": "linux", "Arch": arch,
            "KernelVersion": uname.release, "Experimental": False, "BuildTime": ""})

    async def df(self, req: Request) -> Response:
        """Images (with the counts only df has), containers with sizes (newest first), volumes,
        and an empty build cache; layer sizes come from their blobs, read in a thread."""
        images = self.images.list()
        layers_of = {i.id: i.diff_ids for i in images}
        containers = sorted(self.containers.all(), key=lambda c: c.created, reverse=True)
        users = Counter(c.image_id for c in containers)

        def measure_layers() -> tuple[int, dict[str, int]]:
            return (diskusage.layers_size(layers_of, self.images.layer_size),
                    diskusage.shared_sizes(layers_of, self.images.layer_size))
        total, shared = await asyncio.to_thread(measure_layers)
        return json_response({
            "LayersSize": total,
            "Images": diskusage.image_items([i.summary() for i in images], users, shared),
            "Containers": await self.containers.views.sized_summaries(containers),
            "Volumes": await self.volumes_df() if self.volumes_df else [],
            "BuildCache": [], "BuilderSize": 0})

    async def info(self, req: Request) -> Response:
        facts = limits.host_facts()
        states = [c.state for c in self.containers.all()]
        paused = sum(s.paused for s in states)
        running = sum(s.running for s in states) - paused
        uname = platform.uname()
        return json_response({
            "ID": self.daemon_id, "Containers": len(states), "ContainersRunning": running,
            "ContainersPaused": paused, "ContainersStopped": len(states) - running - paused,
            "Images": len(self.images.list()), "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]], "DockerRootDir": self.data_root,
            "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroups.version(), **_limit_support(facts),
            "KernelVersion": uname.release, "OperatingSystem": _os_name(), "OSType": "linux",
            "OSVersion": "", "Architecture": uname.machine, "NCPU": os.cpu_count() or 1,
            "MemTotal": _mem_total(), "Name": socket.gethostname(), "ServerVersion": tether.__version__,
            "DefaultRuntime": "runc", "Runtimes": {"runc": {"path": "runc"}},
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "SecurityOptions": self.containers.security.info_options(), "Labels": [],
            "ExperimentalBuild": False, "Debug": False, "IndexServerAddress": "",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
            "Plugins": {"Volume": [], "Network": ["bridge", "host", "null"],
                        "Log": ["json-file"]},
            "Warnings": cgroups.info_warnings(facts, cgroups.version()) or None})


def _limit_support(facts: HostFacts) -> dict[str, bool]:
    """info's booleans of what the kernel can limit (dockerd's names)."""
    return {"MemoryLimit": facts.memory, "SwapLimit": facts.swap,
            "KernelMemory": facts.kernel_memory, "KernelMemoryTCP": facts.kernel_memory,
            "CpuCfsPeriod": facts.cpu_cfs, "CpuCfsQuota": facts.cpu_cfs,
            "CPUShares": facts.cpu_shares, "CPUSet": facts.cpuset, "PidsLimit": facts.pids,
            "OomKillDisable": facts.oom_kill_disable}


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
