"""The cgroup driver: which cgroup version the host runs, what its kernel can limit, and a
container's cgroup read (OOM kills) and written (live updates).

runc makes the container's cgroup from the OCI `linux.resources` at create and records where it
put it in its state (`cgroup_paths`: controller -> directory, "" for the unified hierarchy); this
module starts from those paths, so a relative `--cgroup-parent` (placed by runc under its own
cgroup) is found as runc found it. Back-ends: v1 (one hierarchy per controller, as this host:
a hybrid one whose unified mount holds no controllers) and v2 (one unified hierarchy). The file
writes of each are pure functions of the OCI section (`v1_writes`, `v2_writes`), the way runc
maps it, so the v2 mapping is tested without a v2 host.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from tether.rules.resources import HostFacts

ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = 9223372036854771712  # what a v1 memory file reads when no limit is set


def version(root: Path = ROOT) -> str:
    """"2" when the host's /sys/fs/cgroup is the unified hierarchy, else "1"."""
    return "2" if (root / "cgroup.controllers").exists() else "1"


def host_facts(root: Path = ROOT) -> HostFacts:
    """dockerd's sysinfo: a limit is supported when its control file exists at the root."""
    ncpu = os.cpu_count() or 1
    if version(root) == "2":
        controllers = set((root / "cgroup.controllers").read_text().split())
        cpus = _read(root / "cpuset.cpus.effective") or f"0-{ncpu - 1}"
        mems = _read(root / "cpuset.mems.effective") or "0"
        return HostFacts(
            ncpu=ncpu, cpus=cpus, mems=mems, memory="memory" in controllers,
            swap="memory" in controllers, reservation="memory" in controllers,
            swappiness=False, kernel_memory=False, oom_kill_disable=False,
            pids="pids" in controllers, cpu_shares="cpu" in controllers,
            cpu_cfs="cpu" in controllers, cpu_realtime=False, cpuset="cpuset" in controllers,
            blkio_weight="io" in controllers, blkio_weight_device="io" in controllers,
            blkio_throttle="io" in controllers)
    mem, cpu, blkio = root / "memory", root / "cpu", root / "blkio"
    return HostFacts(
        ncpu=ncpu, cpus=_read(root / "cpuset" / "cpuset.effective_cpus") or f"0-{ncpu - 1}",
        mems=_read(root / "cpuset" / "cpuset.effective_mems") or "0",
        memory=(mem / "memory.limit_in_bytes").exists(),
        swap=(mem / "memory.memsw.limit_in_bytes").exists(),
        reservation=(mem / "memory.soft_limit_in_bytes").exists(),
        swappiness=(mem / "memory.swappiness").exists(),
        # deprecated since Linux 5.4; the kernels from 5.16 on take the write and apply nothing
        kernel_memory=(mem / "memory.kmem.limit_in_bytes").exists()
        and _kernel_release() < (5, 16),
        oom_kill_disable=(mem / "memory.oom_control").exists(),
        pids=(root / "pids" / "cgroup.procs").exists(),  # the root has no pids.max
        cpu_shares=(cpu / "cpu.shares").exists(),
        cpu_cfs=(cpu / "cpu.cfs_quota_us").exists(),
        cpu_realtime=(cpu / "cpu.rt_runtime_us").exists(),
        cpuset=(root / "cpuset" / "cpuset.cpus").exists(),
        blkio_weight=(blkio / "blkio.weight").exists(),
        blkio_weight_device=(blkio / "blkio.weight_device").exists(),
        blkio_throttle=(blkio / "blkio.throttle.read_bps_device").exists())


def info_warnings(facts: HostFacts, cgroup_version: str = "1") -> list[str]:
    """`docker info`'s warnings for what the kernel lacks, in dockerd's words. The blkio ones
    are left out: Docker 20.10 on this kind of host (no blkio.weight) does not show them."""
    checks = (
        (facts.memory, "WARNING: No memory limit support"),
        (facts.swap, "WARNING: No swap limit support"),
        # v2 has no kernel memory limit at all, and dockerd does not warn there
        (facts.kernel_memory or cgroup_version == "2", "WARNING: No kernel memory limit support"),
        (facts.kernel_memory or cgroup_version == "2",
         "WARNING: No kernel memory TCP limit support"),
        (facts.oom_kill_disable or not facts.memory, "WARNING: No oom kill disable support"),
        (facts.cpu_cfs, "WARNING: No cpu cfs quota support"),
        (facts.cpu_cfs, "WARNING: No cpu cfs period support"),
        (facts.cpu_shares, "WARNING: No cpu shares support"),
        (facts.cpuset, "WARNING: No cpuset support"),
    )
    return [text for supported, text in checks if not supported]


def _kernel_release() -> tuple[int, int]:
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int(parts[1].split("-")[0])
    except (IndexError, ValueError):
        return (0, 0)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def device_number(path: str) -> tuple[int, int]:
    """A host block device's (major, minor), for the blkio rules (dockerd stats the path)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"stat {path}: {os.strerror(exc.errno or errno.ENOENT).lower()}") \
            from None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


# ---- the file writes of each back-end -----------------------------------------------------

def _devices(entries: list[dict[str, Any]], value: str) -> list[str]:
    return [f"{e['major']}:{e['minor']} {e[value]}" for e in entries]


def v1_writes(res: dict[str, Any], pids_unlimited: bool = False) -> list[tuple[str, str, str]]:
    """(controller, file, value) in the order runc writes them; memory comes with the swap
    limit after it (the caller retries swap first when the kernel refuses a raise)."""
    out: list[tuple[str, str, str]] = []
    memory, cpu = res.get("memory", {}), res.get("cpu", {})
    for field, name in (("limit", "memory.limit_in_bytes"), ("swap", "memory.memsw.limit_in_bytes"),
                        ("reservation", "memory.soft_limit_in_bytes"),
                        ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
                        ("swappiness", "memory.swappiness")):
        if field in memory:
            out.append(("memory", name, str(memory[field])))
    for field, name in (("shares", "cpu.shares"), ("period", "cpu.cfs_period_us"),
                        ("quota", "cpu.cfs_quota_us"), ("realtimePeriod", "cpu.rt_period_us"),
                        ("realtimeRuntime", "cpu.rt_runtime_us")):
        if field in cpu:
            out.append(("cpu", name, str(cpu[field])))
    for field, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if field in cpu:
            out.append(("cpuset", name, cpu[field]))
    if "pids" in res:
        out.append(("pids", "pids.max", str(res["pids"]["limit"])))
    elif pids_unlimited:
        out.append(("pids", "pids.max", "max"))
    block = res.get("blockIO", {})
    if "weight" in block:
        out.append(("blkio", "blkio.weight", str(block["weight"])))
    for line in _devices(block.get("weightDevice", []), "weight"):
        out.append(("blkio", "blkio.weight_device", line))
    for field, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for line in _devices(block.get(field, []), "rate"):
            out.append(("blkio", name, line))
    return out


def cpu_weight(shares: int) -> int:
    """cpu.shares (2..262144) on v2's cpu.weight scale (1..10000), as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 0


def io_weight(weight: int) -> int:
    """blkio weight (10..1000) on v2's io.weight scale (1..10000), as runc converts it."""
    return 1 + (weight - 10) * 9999 // 990 if weight else 0


def v2_writes(res: dict[str, Any], pids_unlimited: bool = False) -> list[tuple[str, str]]:
    """(file, value) of the unified hierarchy for the same OCI section, as runc maps it:
    swap is memory+swap in v1 and swap alone in v2; shares and weights are rescaled."""
    out: list[tuple[str, str]] = []
    memory, cpu = res.get("memory", {}), res.get("cpu", {})
    if "limit" in memory:
        out.append(("memory.max", str(memory["limit"])))
    if "swap" in memory:
        swap = memory["swap"]
        if swap == -1:
            out.append(("memory.swap.max", "max"))
        elif "limit" in memory:
            out.append(("memory.swap.max", str(swap - memory["limit"])))
    if "reservation" in memory:
        out.append(("memory.low", str(memory["reservation"])))
    if "shares" in cpu:
        out.append(("cpu.weight", str(cpu_weight(cpu["shares"]))))
    if "quota" in cpu or "period" in cpu:
        quota = cpu.get("quota", -1)
        out.append(("cpu.max", f"{quota if quota > 0 else 'max'} {cpu.get('period', 100000)}"))
    for field, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if field in cpu:
            out.append((name, cpu[field]))
    if "pids" in res:
        out.append(("pids.max", str(res["pids"]["limit"])))
    elif pids_unlimited:
        out.append(("pids.max", "max"))
    block = res.get("blockIO", {})
    if "weight" in block:
        out.append(("io.weight", f"default {io_weight(block['weight'])}"))
    for e in block.get("weightDevice", []):
        out.append(("io.weight", f"{e['major']}:{e['minor']} {io_weight(e['weight'])}"))
    for field, key in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for e in block.get(field, []):
            out.append(("io.max", f"{e['major']}:{e['minor']} {key}={e['rate']}"))
    return out


def v2_unsupported(res: dict[str, Any]) -> list[str]:
    """The OCI fields v2 has no file for (runc refuses them there)."""
    memory, cpu = res.get("memory", {}), res.get("cpu", {})
    return [name for present, name in (
        ("kernel" in memory, "kernel memory"), ("swappiness" in memory, "memory swappiness"),
        (bool(memory.get("disableOOMKiller")), "OOM killer disabling"),
        ("kernelTCP" in memory, "kernel TCP memory"),
        ("realtimePeriod" in cpu or "realtimeRuntime" in cpu, "cpu real-time scheduling"))
        if present]


# ---- a container's cgroup -----------------------------------------------------------------

def is_unified(paths: dict[str, str]) -> bool:
    """runc found the unified hierarchy only: a v2 host (a hybrid one lists v1 controllers)."""
    return "" in paths and not any(paths.keys() - {""})


class UpdateError(Exception):
    """A limit the kernel refused; the text names the file, never a host path."""


def _write(path: Path, name: str, value: str) -> None:
    try:
        path.joinpath(name).write_text(value)
    except OSError as exc:
        raise UpdateError(f'failed to write "{value}" to {name}: '
                          f"{os.strerror(exc.errno or errno.EIO).lower()}") from None


def apply(paths: dict[str, str], res: dict[str, Any], pids_unlimited: bool = False) -> None:
    """Write `res` (an OCI resources section) into a running container's cgroup."""
    if is_unified(paths):
        unsupported = v2_unsupported(res)
        if unsupported:
            raise UpdateError(f"cgroup v2 does not support {', '.join(unsupported)}")
        for name, value in v2_writes(res, pids_unlimited):
            _write(Path(paths[""]), name, value)
        return
    writes = v1_writes(res, pids_unlimited)
    swap_first = False
    for controller, name, value in writes:
        if controller not in paths:
            raise UpdateError(f"the {controller} cgroup controller is not mounted")
        directory = Path(paths[controller])
        if name == "memory.memsw.limit_in_bytes" and swap_first:
            continue  # written before the limit
        if name == "memory.limit_in_bytes":
            swap = next((v for c, n, v in writes if n == "memory.memsw.limit_in_bytes"), None)
            # as runc: memory+swap must stay at or above memory, so a limit raised past the
            # current memory+swap needs the new memory+swap first
            current = _read(directory / "memory.memsw.limit_in_bytes")
            swap_first = swap is not None and current.isdigit() and int(value) > int(current)
            if swap_first:
                _write(directory, "memory.memsw.limit_in_bytes", swap)
        _write(directory, name, value)


def oom_kills(paths: dict[str, str]) -> int:
    """How many processes the OOM killer took in the cgroup: v1's memory.oom_control or v2's
    memory.events `oom_kill`. Kept by the kernel until the cgroup is removed, so it is read
    at the exit, before `runc delete`, also when the exit happened while tetherd was away."""
    if "memory" in paths:
        source = Path(paths["memory"]) / "memory.oom_control"
    elif "" in paths:
        source = Path(paths[""]) / "memory.events"
    else:
        return 0
    for line in _read(source).splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0
