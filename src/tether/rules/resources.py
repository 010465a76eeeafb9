"""A container's resource limits (HostConfig's Resources fields): dockerd's checks and their
OCI form.

Pure functions over the API-shaped mapping (Docker's field names as keys, as
`apitypes.RESOURCES` decodes them) and the host's facts, which the caller reads
(tether.runtime.cgroups.host_facts). The checks follow dockerd's verifyPlatformContainerResources
(same order, same texts, same Warnings, a limit the kernel cannot apply discarded with its warning);
dockerd's defaults (adaptContainerSettings: MemorySwap twice Memory) are spec/create.py's. The OCI section is what runc
makes the container's cgroup from; the v1 and v2 file writes of a live update are computed from
it in tether.runtime.cgroups.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from tether.rules.errors import ApiError, BadRequest, Conflict

MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory
CFS_PERIOD = 100_000  # the period --cpus is expressed in, as dockerd

# The Resources fields `docker update` may change (UpdateConfig minus the restart policy).
UPDATABLE = ("Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "NanoCpus",
             "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
             "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight")


@dataclass(frozen=True)
class HostFacts:
    """What the kernel can limit here (dockerd's sysinfo), and the CPUs and memory nodes."""

    ncpu: int
    cpus: str = "0"            # cpuset.effective_cpus of the root, e.g. "0-1"
    mems: str = "0"
    memory: bool = True
    swap: bool = True           # swap accounting (memory.memsw.* / memory.swap.max)
    reservation: bool = True
    swappiness: bool = True
    kernel_memory: bool = False
    oom_kill_disable: bool = True
    pids: bool = True
    cpu_shares: bool = True
    cpu_cfs: bool = True
    cpu_realtime: bool = False
    cpuset: bool = True
    blkio_weight: bool = False
    blkio_weight_device: bool = False
    blkio_throttle: bool = True


def parse_list(text: str) -> set[int]:
    """A cpuset list ("0-2,4"), with dockerd's error for a malformed one."""
    result: set[int] = set()
    if text == "":
        return result
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"invalid format: {text}")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ValueError(f"invalid format: {text}")
        result.update(range(low, high + 1))
    return result


def _check_set(value: str, available: str, what: str, plural: str) -> None:
    try:
        wanted = parse_list(value)
    except ValueError as exc:
        raise BadRequest(f"Invalid value {value} for cpuset {what}: {exc}") from None
    if not wanted <= parse_list(available):
        raise BadRequest(f"Requested {plural} are not available - requested {value}, "
                         f"available: {available}")


def check_decoded(r: dict[str, Any], facts: HostFacts) -> None:
    """The limits dockerd 20.10 refuses while it decodes a create body (runconfig's validateQoS
    and validateResources), before its other checks of the container. Its errors there carry
    no kind, so they reach the client as 500s. An update is not decoded that way: dockerd
    takes real-time values there without these checks and the kernel judges them
    (engine/limits.py); only a kernel without real-time groups refuses them in `verify`."""
    if r.get("IOMaximumBandwidth"):
        raise ApiError("Invalid QoS settings: linux does not support configuration of maximum "
                       "bandwidth")
    if r.get("IOMaximumIOps"):
        raise ApiError("Invalid QoS settings: linux does not support configuration of maximum "
                       "IOPs")
    period, runtime = r.get("CpuRealtimePeriod") or 0, r.get("CpuRealtimeRuntime") or 0
    if (period or runtime) and not facts.cpu_realtime:
        raise ApiError("Your kernel does not support CPU real-time scheduler")
    if period and runtime and runtime > period:
        raise ApiError("cpu real-time runtime cannot be higher than cpu real-time period")


def verify(r: dict[str, Any], facts: HostFacts, update: bool = False) -> list[str]:
    """Check `r` (Resources fields) as dockerd does, dropping in place what the kernel cannot
    apply; returns dockerd's Warnings, raises BadRequest with its text."""
    warnings: list[str] = []
    get = r.get
    memory = get("Memory") or 0
    if memory != 0 and memory < MIN_MEMORY:
        raise BadRequest("Minimum memory limit allowed is 6MB")
    if memory > 0 and not facts.memory:
        warnings.append("Your kernel does not support memory limit capabilities or the cgroup "
                        "is not mounted. Limitation discarded.")
        r["Memory"], r["MemorySwap"], memory = 0, -1, 0
    swap = get("MemorySwap") or 0
    if memory > 0 and swap != -1 and not facts.swap:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is "
                        "not mounted. Memory limited without swap.")
        r["MemorySwap"] = swap = -1
    if memory > 0 and swap > 0 and swap < memory:
        raise BadRequest("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0 and not update:
        raise BadRequest("You should always set the Memory limit when using Memoryswap limit, "
                         "see usage")
    if get("MemorySwappiness") is not None and get("MemorySwappiness") != -1:
        if not facts.swappiness:
            warnings.append("Your kernel does not support memory swappiness capabilities or the "
                            "cgroup is not mounted. Memory swappiness discarded.")
            r["MemorySwappiness"] = None
        elif not 0 <= r["MemorySwappiness"] <= 100:
            raise BadRequest(f"Invalid value: {r['MemorySwappiness']}, valid memory swappiness "
                             "range is 0-100")
    elif get("MemorySwappiness") == -1:  # dockerd's fixMemorySwappiness: -1 means unset
        r["MemorySwappiness"] = None
    reservation = get("MemoryReservation") or 0
    if reservation > 0 and not facts.reservation:
        warnings.append("Your kernel does not support memory soft limit capabilities or the "
                        "cgroup is not mounted. Limitation discarded.")
        r["MemoryReservation"] = reservation = 0
    if reservation > 0 and reservation < MIN_MEMORY:
        raise BadRequest("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise BadRequest("Minimum memory limit can not be less than memory reservation limit, "
                         "see usage")
    if (get("KernelMemory") or 0) > 0:
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed in "
                        "a future release.")
        if r["KernelMemory"] < MIN_MEMORY:  # checked first: Docker 20.10 on this kernel
            raise BadRequest("Minimum kernel memory limit allowed is 6MB")  # takes kmem
        if not facts.kernel_memory:
            warnings.append("Your kernel does not support kernel memory limit capabilities or "
                            "the cgroup is not mounted. Limitation discarded.")
            r["KernelMemory"] = 0
    if get("OomKillDisable") is not None and not facts.oom_kill_disable:
        if r["OomKillDisable"]:
            warnings.append("Your kernel does not support OomKillDisable. OomKillDisable "
                            "discarded.")
        r["OomKillDisable"] = None
    if get("OomKillDisable") and memory == 0:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")
    if get("PidsLimit") is not None and not facts.pids:
        if r["PidsLimit"] > 0:
            warnings.append("Your kernel does not support PIDs limit capabilities or the cgroup "
                            "is not mounted. PIDs limit discarded.")
        r["PidsLimit"] = None
    _verify_cpu(r, facts, warnings)
    realtime = get("CpuRealtimePeriod") or get("CpuRealtimeRuntime")
    if update and realtime and not facts.cpu_realtime:
        # dockerd 20.10 records these on a kernel without real-time groups (cgroup v2 among
        # them) and the next start fails; refused here, where it can be told
        raise BadRequest("Your kernel does not support CPU real-time scheduler")
    _verify_blkio(r, facts, warnings)
    return warnings


def _verify_cpu(r: dict[str, Any], facts: HostFacts, warnings: list[str]) -> None:
    nano = r.get("NanoCpus") or 0
    if nano > 0 and (r.get("CpuPeriod") or 0) > 0:
        raise BadRequest("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and (r.get("CpuQuota") or 0) > 0:
        raise BadRequest("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano > 0 and not facts.cpu_cfs:
        raise BadRequest("NanoCPUs can not be set, as your kernel does not support CPU CFS "
                         "scheduler or the cgroup is not mounted")
    if nano < 0 or nano > facts.ncpu * 1_000_000_000:
        raise BadRequest(f"Range of CPUs is from 0.01 to {facts.ncpu}.00, as there are only "
                         f"{facts.ncpu} CPUs available")
    if (r.get("CpuShares") or 0) > 0 and not facts.cpu_shares:
        warnings.append("Your kernel does not support CPU shares or the cgroup is not mounted. "
                        "Shares discarded.")
        r["CpuShares"] = 0
    if (r.get("CpuPeriod") or r.get("CpuQuota")) and not facts.cpu_cfs:
        warnings.append("Your kernel does not support CPU CFS scheduler. CPU period/quota "
                        "discarded.")
        r["CpuPeriod"] = r["CpuQuota"] = 0
    period = r.get("CpuPeriod") or 0
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise BadRequest("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                         "(i.e. 1000000)")
    if 0 < (r.get("CpuQuota") or 0) < 1000:
        raise BadRequest("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (r.get("CpuPercent") or 0) > 0:
        warnings.append("linux does not support CPU percent. Percent discarded.")
        r["CpuPercent"] = 0
    if (r.get("CpusetCpus") or r.get("CpusetMems")) and not facts.cpuset:
        warnings.append("Your kernel does not support cpuset or the cgroup is not mounted. "
                        "Cpuset discarded.")
        r["CpusetCpus"] = r["CpusetMems"] = ""
    _check_set(r.get("CpusetCpus") or "", facts.cpus, "cpus", "CPUs")
    _check_set(r.get("CpusetMems") or "", facts.mems, "mems", "memory nodes")


_THROTTLES = (
    ("BlkioDeviceReadBps", "blkio_throttle", "BPS Block I/O read limit", "Block I/O BPS read"),
    ("BlkioDeviceWriteBps", "blkio_throttle", "BPS Block I/O write limit", "Block I/O BPS write"),
    ("BlkioDeviceReadIOps", "blkio_throttle", "IOPS Block read limit", "Block I/O IOPS read"),
    ("BlkioDeviceWriteIOps", "blkio_throttle", "IOPS Block write limit", "Block I/O IOPS write"),
)


def _verify_blkio(r: dict[str, Any], facts: HostFacts, warnings: list[str]) -> None:
    if (r.get("BlkioWeight") or 0) > 0 and not facts.blkio_weight:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")
        r["BlkioWeight"] = 0
    if (r.get("BlkioWeight") or 0) > 0 and not 10 <= r["BlkioWeight"] <= 1000:
        raise BadRequest("Range of blkio weight is from 10 to 1000")
    if r.get("IOMaximumBandwidth") or r.get("IOMaximumIOps"):
        raise BadRequest("Invalid QoS settings: linux does not support Maximum IO Bandwidth or "
                         "Maximum IO IOps")
    if r.get("BlkioWeightDevice") and not facts.blkio_weight_device:
        warnings.append("Your kernel does not support Block I/O weight_device or the cgroup is "
                        "not mounted. Weight-device discarded.")
        r["BlkioWeightDevice"] = []
    for key, fact, what, limit in _THROTTLES:
        if r.get(key) and not getattr(facts, fact):
            warnings.append(f"Your kernel does not support {what} or the cgroup is not mounted. "
                            f"{limit} limit discarded.")
            r[key] = []


def merge_update(current: dict[str, Any], update: dict[str, Any], cid: str) -> dict[str, Any]:
    """The Resources after `docker update`: dockerd's UpdateContainer on a copy of `current`
    (a field left 0 keeps its value; --cpus and period/quota exclude one another; memory above
    the swap already set, 0 when none was, needs the swap too, as in Docker 20.10)."""
    def conflict(text: str) -> Conflict:
        return Conflict(f"Cannot update container {cid}: {text}")
    for new, old, text in (
            ("NanoCpus", "CpuPeriod", "Nano CPUs cannot be updated as CPU Period"),
            ("NanoCpus", "CpuQuota", "Nano CPUs cannot be updated as CPU Quota"),
            ("CpuPeriod", "NanoCpus", "CPU Period cannot be updated as NanoCPUs"),
            ("CpuQuota", "NanoCpus", "CPU Quota cannot be updated as NanoCPUs")):
        if (update.get(new) or 0) > 0 and (current.get(old) or 0) > 0:
            raise conflict(f"Conflicting options: {text} has already been set")
    memory = update.get("Memory") or 0
    if memory and memory > (current.get("MemorySwap") or 0) and not update.get("MemorySwap"):
        raise conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    merged = dict(current)
    for key in UPDATABLE:
        value = update.get(key)
        if key == "PidsLimit":
            if value is not None:  # 0 or less: unlimited, kept as 0 (dockerd)
                merged[key] = max(value, 0)
        elif value:
            merged[key] = value
    return merged


def cgroups_path(cid: str, parent: str | None, default_parent: str = "/tether") -> str:
    """The OCI cgroupsPath, as dockerd's cgroupfs driver: `<parent>/<id>`, the container's
    CgroupParent instead of the daemon's when given. A relative parent stays relative: runc
    then puts it under the cgroup runc itself runs in, as it does for dockerd."""
    base = parent or default_parent
    return f"{base.rstrip('/')}/{cid}" if base.strip("/") else f"/{cid}"


def oci_resources(r: dict[str, Any], device_number: Callable[[str], tuple[int, int]]
                  ) -> dict[str, Any]:
    """OCI `linux.resources` (without `devices`) from verified Resources; `device_number` gives
    a block device path's (major, minor), as dockerd stats it."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    for key, field in (("Memory", "limit"), ("MemoryReservation", "reservation"),
                       ("MemorySwap", "swap"), ("KernelMemory", "kernel"),
                       ("KernelMemoryTCP", "kernelTCP")):
        if r.get(key):
            memory[field] = r[key]
    if r.get("MemorySwappiness") is not None:
        memory["swappiness"] = r["MemorySwappiness"]
    if r.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if r.get("CpuShares"):
        cpu["shares"] = r["CpuShares"]
    if r.get("NanoCpus"):
        cpu["period"] = CFS_PERIOD
        cpu["quota"] = r["NanoCpus"] * CFS_PERIOD // 1_000_000_000
    else:
        if r.get("CpuPeriod"):
            cpu["period"] = r["CpuPeriod"]
        if r.get("CpuQuota"):
            cpu["quota"] = r["CpuQuota"]
    for key, field in (("CpuRealtimePeriod", "realtimePeriod"),
                       ("CpuRealtimeRuntime", "realtimeRuntime"),
                       ("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        if r.get(key):
            cpu[field] = r[key]
    if cpu:
        out["cpu"] = cpu
    if (r.get("PidsLimit") or 0) > 0:
        out["pids"] = {"limit": r["PidsLimit"]}
    block = _block_io(r, device_number)
    if block:
        out["blockIO"] = block
    return out


def _block_io(r: dict[str, Any], device_number: Callable[[str], tuple[int, int]]
              ) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if r.get("BlkioWeight"):
        block["weight"] = r["BlkioWeight"]
    weights = []
    for entry in filter(None, r.get("BlkioWeightDevice") or []):  # a null entry: nothing
        major, minor = device_number(entry.get("Path") or "")
        weights.append({"major": major, "minor": minor, "weight": entry.get("Weight") or 0})
    if weights:
        block["weightDevice"] = weights
    for key, field in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                       ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                       ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                       ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        rates = []
        for entry in filter(None, r.get(key) or []):
            major, minor = device_number(entry.get("Path") or "")
            rates.append({"major": major, "minor": minor, "rate": entry.get("Rate") or 0})
        if rates:
            block[field] = rates
    return block
