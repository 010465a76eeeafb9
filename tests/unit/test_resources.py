"""Resource limits: dockerd's checks (rules.resources), the OCI section, and the cgroup driver's
v1 and v2 file writes from the same input (runtime.cgroups; v2 is tested only here)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tether.engine import procs
from tether.rules import resources as r
from tether.rules.errors import ApiError, BadRequest, Conflict
from tether.runtime import cgroups

FACTS = r.HostFacts(ncpu=2, cpus="0-1", mems="0", cpu_realtime=True)
MB = 1 << 20


def devnum(path: str) -> tuple[int, int]:
    return {"/dev/vda": (254, 0), "/dev/sdb": (8, 16)}[path]


def check(hc: dict, facts: r.HostFacts = FACTS, update: bool = False) -> list[str]:
    return r.verify(hc, facts, update)


@pytest.mark.parametrize("hc, message", [
    ({"Memory": 5 * MB}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 10 * MB}, "You should always set the Memory limit when using Memoryswap "
                              "limit, see usage"),
    ({"Memory": 10 * MB, "MemorySwap": 5 * MB}, "Minimum memoryswap limit should be larger "
                                                "than memory limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"MemoryReservation": MB}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 10 * MB, "MemoryReservation": 20 * MB},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"KernelMemory": MB}, "Minimum kernel memory limit allowed is 6MB"),
    ({"NanoCpus": 3_000_000_000}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs "
                                  "available"),
    ({"NanoCpus": -1}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
    ({"NanoCpus": 10**9, "CpuPeriod": 100000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10**9, "CpuQuota": 100000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                         "(i.e. 1000000)"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpusetCpus": "5"}, "Requested CPUs are not available - requested 5, available: 0-1"),
    ({"CpusetCpus": "abc"}, "Invalid value abc for cpuset cpus: invalid format: abc"),
    ({"CpusetCpus": "1-0"}, "Invalid value 1-0 for cpuset cpus: invalid format: 1-0"),
    ({"CpusetMems": "3"}, "Requested memory nodes are not available - requested 3, available: 0"),
    ({"IOMaximumIOps": 5}, "Invalid QoS settings: linux does not support Maximum IO Bandwidth or "
                           "Maximum IO IOps"),
])
def test_dockerd_refusals(hc, message) -> None:
    with pytest.raises(BadRequest) as err:
        check(hc)
    assert err.value.message == message


def test_blkio_weight_range_where_the_kernel_has_it() -> None:
    with pytest.raises(BadRequest, match="Range of blkio weight is from 10 to 1000"):
        check({"BlkioWeight": 5}, r.HostFacts(ncpu=2, blkio_weight=True))


def test_checks_of_a_decoded_create_body() -> None:
    """dockerd 20.10's runconfig checks: 500s (unclassified errors), real-time ones included."""
    for body, facts, text in (
            ({"CpuRealtimeRuntime": 1000}, r.HostFacts(ncpu=2),
             "Your kernel does not support CPU real-time scheduler"),
            ({"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 1001}, FACTS,
             "cpu real-time runtime cannot be higher than cpu real-time period"),
            ({"CpuRealtimePeriod": -1, "CpuRealtimeRuntime": 1}, FACTS,
             "cpu real-time runtime cannot be higher than cpu real-time period"),
            ({"IOMaximumBandwidth": 1}, FACTS, "Invalid QoS settings: linux does not support "
                                               "configuration of maximum bandwidth")):
        with pytest.raises(ApiError) as err:
            r.check_decoded(body, facts)
        assert (err.value.status, err.value.message) == (500, text)
    r.check_decoded({"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 1000}, FACTS)
    r.check_decoded({"CpuRealtimeRuntime": 5000}, FACTS)  # the kernel judges it (at the start)


def test_what_the_kernel_lacks_is_discarded_with_dockerds_warning() -> None:
    hc = {"Memory": 10 * MB, "MemorySwap": 20 * MB, "BlkioWeight": 300,
          "BlkioWeightDevice": [{"Path": "/dev/vda", "Weight": 10}], "KernelMemory": 10 * MB,
          "CpuPercent": 50}
    warnings = check(hc, r.HostFacts(ncpu=2, swap=False))
    assert warnings == [
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
        "Memory limited without swap.",
        "Specifying a kernel memory limit is deprecated and will be removed in a future release.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not "
        "mounted. Limitation discarded.",
        "linux does not support CPU percent. Percent discarded.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight "
        "discarded.",
        "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
        "Weight-device discarded."]
    assert (hc["MemorySwap"], hc["BlkioWeight"], hc["BlkioWeightDevice"], hc["KernelMemory"]) \
        == (-1, 0, [], 0)


def test_oom_kill_disable_without_memory_warns() -> None:
    assert check({"OomKillDisable": True}) == [
        "OOM killer is disabled for the container, but no memory limit is set, this can result "
        "in the system running out of resources."]
    assert check({"OomKillDisable": True, "Memory": 10 * MB}) == []


def test_swap_without_memory_is_allowed_in_an_update() -> None:
    assert check({"MemorySwap": 10 * MB}, update=True) == []


def test_realtime_update_on_a_kernel_without_realtime_groups_is_refused() -> None:
    """Recorded, it would fail the container's next start (dockerd 20.10 records it)."""
    no_rt = r.HostFacts(ncpu=2, cpus="0-1", mems="0", cpu_realtime=False)
    with pytest.raises(BadRequest, match="^Your kernel does not support CPU real-time scheduler$"):
        r.verify({"CpuRealtimeRuntime": 1000}, no_rt, update=True)
    assert r.verify({"CpuRealtimeRuntime": 1000}, FACTS, update=True) == []


def test_update_merges_as_dockerd() -> None:
    current = {"Memory": 20 * MB, "MemorySwap": 40 * MB, "CpuShares": 0, "PidsLimit": 5}
    merged = r.merge_update(current, {"Memory": 30 * MB, "PidsLimit": -1, "CpuShares": 0}, "c")
    assert merged == {"Memory": 30 * MB, "MemorySwap": 40 * MB, "CpuShares": 0, "PidsLimit": 0}
    assert current["Memory"] == 20 * MB  # a copy
    with pytest.raises(Conflict) as err:
        r.merge_update(current, {"Memory": 50 * MB}, "c")
    assert err.value.message == ("Cannot update container c: Memory limit should be smaller than "
                                 "already set memoryswap limit, update the memoryswap at the same "
                                 "time")
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs has already"):
        r.merge_update({"NanoCpus": 10**9}, {"CpuQuota": 50000}, "c")
    with pytest.raises(Conflict, match="Nano CPUs cannot be updated as CPU Period has already"):
        r.merge_update({"CpuPeriod": 50000}, {"NanoCpus": 10**9}, "c")


@pytest.mark.parametrize("parent, expected", [
    (None, "/tether/abc"), ("", "/tether/abc"), ("foo", "foo/abc"), ("/bar/baz/", "/bar/baz/abc"),
    ("/", "/abc")])
def test_cgroups_path(parent, expected) -> None:
    assert r.cgroups_path("abc", parent) == expected


FULL = {"Memory": 32 * MB, "MemorySwap": 64 * MB, "MemoryReservation": 16 * MB,
        "MemorySwappiness": 30, "OomKillDisable": True, "CpuShares": 512,
        "NanoCpus": 1_500_000_000, "CpusetCpus": "1", "CpusetMems": "0", "PidsLimit": 10,
        "BlkioWeight": 300, "BlkioWeightDevice": [{"Path": "/dev/sdb", "Weight": 200}],
        "BlkioDeviceReadBps": [{"Path": "/dev/vda", "Rate": MB}],
        "BlkioDeviceWriteIOps": [{"Path": "/dev/vda", "Rate": 100}]}


def test_oci_resources() -> None:
    assert r.oci_resources(FULL, devnum) == {
        "memory": {"limit": 32 * MB, "reservation": 16 * MB, "swap": 64 * MB, "swappiness": 30,
                   "disableOOMKiller": True},
        "cpu": {"shares": 512, "period": 100000, "quota": 150000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 10},
        "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 16, "weight": 200}],
                    "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": MB}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}}
    assert r.oci_resources({"Memory": 0, "PidsLimit": None, "MemorySwappiness": None,
                            "OomKillDisable": False}, devnum) == {}
    assert r.oci_resources({"CpuPeriod": 50000, "CpuQuota": 25000}, devnum) == {
        "cpu": {"period": 50000, "quota": 25000}}


def test_v1_writes() -> None:
    assert cgroups.v1_writes(r.oci_resources(FULL, devnum)) == [
        ("memory", "memory.limit_in_bytes", str(32 * MB)),
        ("memory", "memory.memsw.limit_in_bytes", str(64 * MB)),
        ("memory", "memory.soft_limit_in_bytes", str(16 * MB)),
        ("memory", "memory.swappiness", "30"),
        ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "150000"), ("cpuset", "cpuset.cpus", "1"),
        ("cpuset", "cpuset.mems", "0"), ("pids", "pids.max", "10"),
        ("blkio", "blkio.weight", "300"), ("blkio", "blkio.weight_device", "8:16 200"),
        ("blkio", "blkio.throttle.read_bps_device", f"254:0 {MB}"),
        ("blkio", "blkio.throttle.write_iops_device", "254:0 100")]
    assert cgroups.v1_writes({}, pids_unlimited=True) == [("pids", "pids.max", "max")]
    assert cgroups.v1_writes(r.oci_resources({"KernelMemoryTCP": 8 * MB}, devnum)) == [
        ("memory", "memory.kmem.tcp.limit_in_bytes", str(8 * MB))]


def test_v2_writes_from_the_same_input() -> None:
    assert cgroups.v2_writes(r.oci_resources(FULL, devnum)) == [
        ("memory.max", str(32 * MB)), ("memory.swap.max", str(32 * MB)),
        ("memory.low", str(16 * MB)), ("cpu.weight", "20"), ("cpu.max", "150000 100000"),
        ("cpuset.cpus", "1"), ("cpuset.mems", "0"), ("pids.max", "10"),
        ("io.weight", "default 2930"), ("io.weight", "8:16 1920"),
        ("io.max", f"254:0 rbps={MB}"), ("io.max", "254:0 wiops=100")]
    assert cgroups.v2_writes({"memory": {"limit": 32 * MB, "swap": -1},
                              "cpu": {"period": 50000}}) == [
        ("memory.max", str(32 * MB)), ("memory.swap.max", "max"), ("cpu.max", "max 50000")]
    assert cgroups.v2_unsupported(r.oci_resources(FULL, devnum)) == [
        "memory swappiness", "OOM killer disabling"]


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000)])
def test_cpu_weight_as_runc(shares, weight) -> None:
    assert cgroups.cpu_weight(shares) == weight


@pytest.mark.parametrize("blkio, weight", [(10, 1), (500, 4950), (1000, 10000)])
def test_io_weight_as_runc(blkio, weight) -> None:
    assert cgroups.io_weight(blkio) == weight


def test_apply_on_a_v2_tree(tmp_path) -> None:
    """A live update on v2 writes the unified directory; v2's missing knobs are refused."""
    res = r.oci_resources({"Memory": 32 * MB, "MemorySwap": 48 * MB, "PidsLimit": 7}, devnum)
    cgroups.apply({"": str(tmp_path)}, res)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {
        "memory.max": str(32 * MB), "memory.swap.max": str(16 * MB), "pids.max": "7"}
    with pytest.raises(cgroups.UpdateError, match="cgroup v2 does not support memory swappiness"):
        cgroups.apply({"": str(tmp_path)}, {"memory": {"swappiness": 3}})


def test_apply_on_v1_raises_swap_first_when_the_limit_grows(tmp_path) -> None:
    mem = tmp_path / "memory"
    mem.mkdir()
    (mem / "memory.memsw.limit_in_bytes").write_text(str(40 * MB))
    cgroups.apply({"memory": str(mem)}, {"memory": {"limit": 60 * MB, "swap": 120 * MB}})
    assert (mem / "memory.limit_in_bytes").read_text() == str(60 * MB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(120 * MB)


def test_apply_names_the_file_not_the_host_path(tmp_path) -> None:
    with pytest.raises(cgroups.UpdateError) as err:
        cgroups.apply({"pids": str(tmp_path / "missing")}, {"pids": {"limit": 3}})
    assert str(err.value) == 'failed to write "3" to pids.max: no such file or directory'
    with pytest.raises(cgroups.UpdateError, match="the cpu cgroup controller is not mounted"):
        cgroups.apply({"memory": str(tmp_path)}, {"cpu": {"shares": 3}})


def test_oom_kills_v1_and_v2(tmp_path) -> None:
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cgroups.oom_kills({"memory": str(tmp_path)}) == 2
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroups.oom_kills({"": str(tmp_path)}) == 1
    assert cgroups.oom_kills({}) == 0
    assert cgroups.oom_kills({"memory": str(tmp_path / "gone")}) == 0


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_host_facts_v1_and_v2(tmp_path) -> None:
    v1 = tmp_path / "v1"
    _tree(v1, {"memory/memory.limit_in_bytes": "", "memory/memory.soft_limit_in_bytes": "",
               "memory/memory.oom_control": "", "cpu/cpu.shares": "", "cpu/cpu.cfs_quota_us": "",
               "cpuset/cpuset.cpus": "", "cpuset/cpuset.effective_cpus": "0-3\n",
               "pids/cgroup.procs": "", "blkio/blkio.throttle.read_bps_device": ""})
    facts = cgroups.host_facts(v1)
    assert cgroups.version(v1) == "1"
    assert (facts.memory, facts.swap, facts.pids, facts.cpu_realtime, facts.blkio_weight,
            facts.blkio_throttle, facts.cpus) == (True, False, True, False, False, True, "0-3")
    assert cgroups.info_warnings(facts) == [
        "WARNING: No swap limit support", "WARNING: No kernel memory limit support",
        "WARNING: No kernel memory TCP limit support"]
    v2 = tmp_path / "v2"
    _tree(v2, {"cgroup.controllers": "cpuset cpu io memory\n", "cpuset.cpus.effective": "0-1"})
    facts = cgroups.host_facts(v2)
    assert cgroups.version(v2) == "2"
    assert (facts.memory, facts.swap, facts.pids, facts.swappiness, facts.blkio_weight,
            facts.cpus) == (True, True, False, False, True, "0-1")
    assert cgroups.info_warnings(facts, "2") == ["WARNING: No oom kill disable support"]


def test_stats_in_dockers_v2_shape() -> None:
    stat = {"usage_usec": 5, "user_usec": 3, "system_usec": 2, "nr_periods": 4,
            "nr_throttled": 1, "throttled_usec": 7}
    cpu = procs.cpu_stats_v2(stat, "cpu  1 0 1 0 0 0 0 0 0 0\ncpu0 1 0 1 0 0 0 0 0 0 0\n")
    assert cpu["cpu_usage"] == {"total_usage": 5000, "usage_in_kernelmode": 2000,
                                "usage_in_usermode": 3000}
    assert cpu["throttling_data"] == {"periods": 4, "throttled_periods": 1,
                                      "throttled_time": 7000}
    assert cpu["online_cpus"] == 1
    assert procs.memory_stats_v2("100\n", "max\n", {"anon": 1}, 4096) == {
        "usage": 100, "stats": {"anon": 1}, "limit": 4096}
    assert procs.memory_stats_v2("100\n", "2048\n", {}, 4096)["limit"] == 2048
    assert procs.io_stat_lines("254:0 rbytes=10 wbytes=20 rios=1 wios=2\n") == [
        "254:0 read 10", "254:0 write 20"]
