"""`docker top` and `docker stats` from the container's cgroup, found where runc put it
(`paths`: runc's cgroup_paths, controller -> directory, "" for the unified hierarchy).

top runs the host's `ps` and keeps the rows of the cgroup's pids, as dockerd does (with `-q
<pids>` first, and without it for ps options that refuse `-q`). stats reads the cpuacct, memory,
pids and blkio controllers (v1) or the unified cgroup's cpu.stat, memory.*, pids.* and io.stat
(v2) and the container's /proc/<pid>/net/dev into Docker's StatsJSON, in the v1 or v2 shape
dockerd gives (the docker CLI computes its columns differently for each).
"""
from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tether.rules.errors import ApiError, BadRequest
from tether.rules.times import ZERO_TIME
from tether.runtime.cgroups import is_unified

_NANOS = 1_000_000_000
_TICKS = os.sysconf("SC_CLK_TCK")


Paths = dict[str, str]


def cgroup_dir(paths: Paths, controller: str) -> Path:
    """The directory of one v1 controller, or of the unified hierarchy on a v2 host."""
    if controller in paths:
        return Path(paths[controller])
    if is_unified(paths):
        return Path(paths[""])
    raise BadRequest(f"no {controller} cgroup for the container")


def cgroup_pids(paths: Paths) -> list[int]:
    """Every process in the container's cgroup: PID 1 and the exec sessions alike."""
    text = (cgroup_dir(paths, "pids") / "cgroup.procs").read_text()
    return [int(line) for line in text.split()]


# ---- top --------------------------------------------------------------------------------

def parse_ps(output: str, pids: list[int]) -> dict[str, Any]:
    """dockerd's parsePSOutput: the header's fields are titles, the last column takes the rest."""
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise ApiError("Couldn't find PID field in ps output")
    index = titles.index("PID")
    wanted = set(pids)
    processes = []
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            pid = int(fields[index])
        except (ValueError, IndexError):
            raise ApiError(
                f"Unexpected pid '{fields[index] if index < len(fields) else ''}'") from None
        if pid in wanted:
            processes.append(fields[:len(titles) - 1] + [" ".join(fields[len(titles) - 1:])])
    return {"Titles": titles, "Processes": processes}


async def _ps(args: list[str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def top(paths: Paths, ps_args: str) -> dict[str, Any]:
    """`ps <ps_args> -q <pids>`, retried without `-q` (some options, e.g. `f`, refuse it)."""
    args = (ps_args or "-ef").split(" ")
    pids = cgroup_pids(paths)
    code, out, err = await _ps([*args, "-q" + ",".join(map(str, pids))])
    if code != 0:
        code, out, err = await _ps(args)
        if code != 0:
            first = err.split("\n", 1)[0] or f"exit status {code}"
            raise ApiError(f"ps: {first}")
    return parse_ps(out, pids)


# ---- stats ------------------------------------------------------------------------------

def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return default


def _key_values(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {k: int(v) for k, v in (line.split() for line in lines if line.strip())}


def system_cpu_usage(proc_stat: str) -> int:
    """Host CPU time in ns as Docker counts it: the first seven fields of /proc/stat's `cpu`."""
    fields = proc_stat.split("\n", 1)[0].split()[1:8]
    return sum(int(f) for f in fields) * _NANOS // _TICKS


def online_cpus(proc_stat: str) -> int:
    return sum(1 for line in proc_stat.splitlines() if re.match(r"cpu\d+ ", line))


def cpu_stats(paths: Paths) -> dict[str, Any]:
    proc_stat = Path("/proc/stat").read_text()
    if is_unified(paths):
        return cpu_stats_v2(_key_values(cgroup_dir(paths, "cpu") / "cpu.stat"), proc_stat)
    acct = cgroup_dir(paths, "cpuacct")
    percpu = [int(v) for v in (acct / "cpuacct.usage_percpu").read_text().split()]
    ticks = _key_values(acct / "cpuacct.stat")
    throttled = _key_values(cgroup_dir(paths, "cpu") / "cpu.stat")
    return {
        "cpu_usage": {"total_usage": _read_int(acct / "cpuacct.usage"), "percpu_usage": percpu,
                      "usage_in_kernelmode": ticks.get("system", 0) * _NANOS // _TICKS,
                      "usage_in_usermode": ticks.get("user", 0) * _NANOS // _TICKS},
        "system_cpu_usage": system_cpu_usage(proc_stat),
        "online_cpus": online_cpus(proc_stat),
        "throttling_data": {"periods": throttled.get("nr_periods", 0),
                            "throttled_periods": throttled.get("nr_throttled", 0),
                            "throttled_time": throttled.get("throttled_time", 0)},
    }


def cpu_stats_v2(stat: dict[str, int], proc_stat: str) -> dict[str, Any]:
    """dockerd's v2 cpu_stats: cpu.stat's microseconds in ns, no per-CPU usage."""
    return {
        "cpu_usage": {"total_usage": stat.get("usage_usec", 0) * 1000,
                      "usage_in_kernelmode": stat.get("system_usec", 0) * 1000,
                      "usage_in_usermode": stat.get("user_usec", 0) * 1000},
        "system_cpu_usage": system_cpu_usage(proc_stat),
        "online_cpus": online_cpus(proc_stat),
        "throttling_data": {"periods": stat.get("nr_periods", 0),
                            "throttled_periods": stat.get("nr_throttled", 0),
                            "throttled_time": stat.get("throttled_usec", 0) * 1000},
    }


def machine_memory(meminfo: str) -> int:
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
    return int(match.group(1)) * 1024 if match else 0


def memory_stats(paths: Paths) -> dict[str, Any]:
    """Usage, peak, memory.stat and the limit (the host's memory when the cgroup has none)."""
    mem = cgroup_dir(paths, "memory")
    host = machine_memory(Path("/proc/meminfo").read_text())
    if is_unified(paths):
        return memory_stats_v2((mem / "memory.current").read_text(),
                               (mem / "memory.max").read_text(),
                               _key_values(mem / "memory.stat"), host)
    limit = _read_int(mem / "memory.limit_in_bytes")
    stats = {"usage": _read_int(mem / "memory.usage_in_bytes"),
             "max_usage": _read_int(mem / "memory.max_usage_in_bytes"),
             "stats": _key_values(mem / "memory.stat"),
             "limit": host if 0 < host < limit else limit}
    failcnt = _read_int(mem / "memory.failcnt")
    if failcnt:  # omitted when zero, as dockerd's omitempty
        stats["failcnt"] = failcnt
    return stats


def memory_stats_v2(current: str, maximum: str, stat: dict[str, int],
                    host: int) -> dict[str, Any]:
    """dockerd's v2 memory_stats: no max_usage or failcnt, memory.max's "max" is the host's."""
    limit = host if maximum.strip() == "max" else int(maximum)
    return {"usage": int(current), "stats": stat, "limit": min(limit, host) if host else limit}


def pids_stats(paths: Paths) -> dict[str, int]:
    pids = cgroup_dir(paths, "pids")
    result = {"current": _read_int(pids / "pids.current")}
    limit = _read_int(pids / "pids.max")
    if limit:
        result["limit"] = limit
    return result


def blkio_stats(paths: Paths | None) -> dict[str, Any]:
    """Bytes read and written per device; the CLI sums the `Read` and `Write` entries."""
    lines: list[str] = []
    if paths and is_unified(paths):
        try:
            lines = io_stat_lines((cgroup_dir(paths, "io") / "io.stat").read_text())
        except FileNotFoundError:
            pass
    elif paths:
        path = cgroup_dir(paths, "blkio") / "blkio.throttle.io_service_bytes_recursive"
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            pass
    entries = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            entries.append({"major": int(major), "minor": int(minor), "op": parts[1],
                            "value": int(parts[2])})
    empty = ("io_serviced_recursive", "io_queue_recursive", "io_service_time_recursive",
             "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
             "sectors_recursive")
    return {"io_service_bytes_recursive": entries, **{k: None for k in empty}}


def io_stat_lines(text: str) -> list[str]:
    """v2 io.stat ("8:0 rbytes=1 wbytes=2 ...") as v1's "8:0 Read 1" lines, as dockerd
    converts it (only the byte counters; the op names capitalised)."""
    lines = []
    for line in text.splitlines():
        device, *pairs = line.split()
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        for key, op in (("rbytes", "read"), ("wbytes", "write")):
            if key in values:
                lines.append(f"{device} {op} {values[key]}")
    return lines


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev into Docker's per-interface counters (loopback left out, as Docker)."""
    names = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
    tx = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")
    result = {}
    for line in text.splitlines()[2:]:
        iface, _, counters = line.partition(":")
        iface = iface.strip()
        values = [int(v) for v in counters.split()]
        if iface == "lo" or len(values) < 12:
            continue
        result[iface] = {**dict(zip(names, values[0:4], strict=True)),
                         **dict(zip(tx, values[8:12], strict=True))}
    return result


def _now() -> str:
    stamp = datetime.now(timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z"


def _zero_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(cid: str, name: str) -> dict[str, Any]:
    """What dockerd answers for a container that is not running: zero values, name and id."""
    blkio = {k: None for k in blkio_stats(None)}
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {}, "blkio_stats": blkio,
            "num_procs": 0, "storage_stats": {}, "cpu_stats": _zero_cpu(),
            "precpu_stats": _zero_cpu(), "memory_stats": {}, "name": name, "id": cid}


def sample(cid: str, name: str, pid: int, paths: Paths, with_networks: bool,
           previous: dict[str, Any] | None) -> dict[str, Any]:
    """One StatsJSON; `previous` (the last sample) gives precpu_stats and preread."""
    if not paths or not cgroup_dir(paths, "cpuacct").is_dir():
        raise BadRequest(f"no cgroup for container {cid}")
    stats: dict[str, Any] = {
        "read": _now(), "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": pids_stats(paths), "blkio_stats": blkio_stats(paths), "num_procs": 0,
        "storage_stats": {}, "cpu_stats": cpu_stats(paths),
        "precpu_stats": previous["cpu_stats"] if previous else _zero_cpu(),
        "memory_stats": memory_stats(paths), "name": name, "id": cid}
    if with_networks:
        try:
            stats["networks"] = parse_net_dev(Path(f"/proc/{pid}/net/dev").read_text())
        except FileNotFoundError:
            pass  # the process exited between the cgroup reads and now
    return stats
