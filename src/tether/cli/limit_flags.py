"""`run`/`create` flags for the container's resource limits, read as the docker CLI reads them
(its texts for bad values, exit 125 before the daemon is asked): the Resources fields of
HostConfig they give. The daemon checks the values themselves (minimums, ranges, the host's CPU
count) with dockerd's texts."""
from __future__ import annotations

from typing import Any, Callable

import click

from tether.cli.process_flags import usage
from tether.rules.units import ram_in_bytes

# flag (as the docker CLI names it in errors), parameter, HostConfig field, parser
_SIZES = (("-m, --memory", "memory", "Memory"),
          ("--memory-reservation", "memory_reservation", "MemoryReservation"),
          ("--kernel-memory", "kernel_memory", "KernelMemory"))
_INTEGERS = (("-c, --cpu-shares", "cpu_shares", "CpuShares"),
             ("--cpu-period", "cpu_period", "CpuPeriod"),
             ("--cpu-quota", "cpu_quota", "CpuQuota"),
             ("--cpu-rt-period", "cpu_rt_period", "CpuRealtimePeriod"),
             ("--cpu-rt-runtime", "cpu_rt_runtime", "CpuRealtimeRuntime"),
             ("--pids-limit", "pids_limit", "PidsLimit"),
             ("--blkio-weight", "blkio_weight", "BlkioWeight"))
_STRINGS = (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems"),
            ("cgroup_parent", "CgroupParent"))


def nano_cpus(text: str) -> int:
    """`--cpus` as the docker CLI's NanoCPUs: a decimal number of CPUs, in billionths (decimal,
    exact where a float is not, is imported only when the flag is given)."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nanos = value * 1_000_000_000
    if nanos != nanos.to_integral_value():
        raise ValueError("value is too precise")
    return int(nanos)


def host_config(params: dict[str, Any]) -> dict[str, Any]:
    """The Resources fields of these flags (only those given, as the docker CLI omits them)."""
    config: dict[str, Any] = {}
    for flag, name, field in _SIZES:
        if params[name]:
            try:
                config[field] = ram_in_bytes(params[name])
            except ValueError as exc:
                raise usage(flag, params[name], str(exc)) from None
    swap = params["memory_swap"]
    if swap:
        try:
            config["MemorySwap"] = -1 if swap == "-1" else ram_in_bytes(swap)
        except ValueError as exc:
            raise usage("--memory-swap", swap, str(exc)) from None
    if params["cpus"]:
        try:
            config["NanoCpus"] = nano_cpus(params["cpus"])
        except ValueError as exc:
            raise usage("--cpus", params["cpus"], str(exc)) from None
    for _, name, field in _INTEGERS:
        if params[name]:
            config[field] = params[name]
    for name, field in _STRINGS:
        if params[name]:
            config[field] = params[name]
    if params["memory_swappiness"] != -1:
        config["MemorySwappiness"] = params["memory_swappiness"]
    if params["oom_kill_disable"]:
        config["OomKillDisable"] = True
    return config


def options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags, for run and create."""
    decorators = [
        click.option("-m", "--memory", default="", help="Memory limit (e.g. 64m)"),
        click.option("--memory-swap", default="",
                     help="Memory plus swap limit; -1 for unlimited swap"),
        click.option("--memory-reservation", default="", help="Soft memory limit"),
        click.option("--memory-swappiness", type=int, default=-1,
                     help="How readily the kernel swaps the container's pages, 0 to 100"),
        click.option("--kernel-memory", default="", help="Cap on the kernel memory the container uses"),
        click.option("--oom-kill-disable", is_flag=True, help="Keep the OOM killer away"),
        click.option("--cpus", default="", help="How many CPUs the container may use (e.g. 0.5)"),
        click.option("-c", "--cpu-shares", type=int, default=0, help="Relative CPU weight"),
        click.option("--cpu-period", type=int, default=0, help="CFS period in microseconds"),
        click.option("--cpu-quota", type=int, default=0, help="CFS quota in microseconds"),
        click.option("--cpu-rt-period", type=int, default=0,
                     help="Real-time period in microseconds"),
        click.option("--cpu-rt-runtime", type=int, default=0,
                     help="Real-time runtime in microseconds"),
        click.option("--cpuset-cpus", default="", help="CPUs the container may run on (0-3, 0,1)"),
        click.option("--cpuset-mems", default="", help="Memory nodes the container may use"),
        click.option("--pids-limit", type=int, default=0,
                     help="How many processes the container may hold (-1 unlimited)"),
        click.option("--blkio-weight", type=int, default=0,
                     help="Relative block I/O weight, 10 to 1000"),
        click.option("--cgroup-parent", default="", help="Cgroup to place the container under"),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn
