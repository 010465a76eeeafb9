"""The docker SDK 7 and resource limits, as docker-py 7.1.0's own integration tests use them
(ContainerUpdateTest, the memory and cpu-rt tests of api_container_test.py, the stats tests,
models_containers_test.py's update), asserting what those tests assert and what the kernel
then enforces."""
from __future__ import annotations

from typing import Iterator

import docker
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def api(daemon) -> Iterator[docker.APIClient]:
    """A low-level client; the containers it made (named sdkl-*) are removed afterwards."""
    client = docker.APIClient(base_url=daemon.host, timeout=60)
    try:
        yield client
    finally:
        for ctr in client.containers(all=True, filters={"name": "sdkl-"}):
            client.remove_container(ctr["Id"], force=True)
        client.close()


def _cat(api: docker.APIClient, ctr, path: str) -> str:
    exec_id = api.exec_create(ctr, ["cat", path])
    return api.exec_start(exec_id).decode().strip()


def test_update_container_memory(api) -> None:
    """ContainerUpdateTest.test_update_container: 400 MiB, then 300 MiB live."""
    ctr = api.create_container("busybox", "top", name="sdkl-update", host_config=api.create_host_config(
        mem_limit=400 << 20))
    api.start(ctr)
    api.update_container(ctr, mem_limit=300 << 20)
    assert api.inspect_container(ctr)["HostConfig"]["Memory"] == 300 << 20
    assert _cat(api, ctr, "/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(300 << 20)


def test_restart_policy_update(api) -> None:
    """ContainerUpdateTest.test_restart_policy_update."""
    ctr = api.create_container("busybox", ["sleep", "60"], name="sdkl-policy",
                               host_config=api.create_host_config(
                                   restart_policy={"MaximumRetryCount": 0, "Name": "always"}))
    api.start(ctr)
    api.update_container(ctr, restart_policy={"MaximumRetryCount": 42, "Name": "on-failure"})
    policy = api.inspect_container(ctr)["HostConfig"]["RestartPolicy"]
    assert policy == {"MaximumRetryCount": 42, "Name": "on-failure"}


def test_update_answers_warnings(api) -> None:
    ctr = api.create_container("busybox", ["sleep", "60"], name="sdkl-warn")
    api.start(ctr)
    reply = api.update_container(ctr, blkio_weight=300)
    assert reply["Warnings"] == ["Your kernel does not support Block I/O weight or the cgroup is "
                                 "not mounted. Weight discarded."]


def test_create_with_memory_constraints_with_str(api) -> None:
    ctr = api.create_container("busybox", "true", name="sdkl-memstr",
                               host_config=api.create_host_config(memswap_limit="1G",
                                                                  mem_limit="700M"))
    api.start(ctr)
    host_config = api.inspect_container(ctr)["HostConfig"]
    assert (host_config["Memory"], host_config["MemorySwap"]) == (700 << 20, 1 << 30)


def test_create_with_memory_constraints_with_int(api) -> None:
    ctr = api.create_container("busybox", ["cat", "/sys/fs/cgroup/memory/memory.swappiness"],
                               name="sdkl-swappiness",
                               host_config=api.create_host_config(mem_swappiness=40))
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    assert api.inspect_container(ctr)["HostConfig"]["MemorySwappiness"] == 40
    assert api.logs(ctr).decode().strip() == "40"


def test_create_with_cpu_rt_options(api) -> None:
    ctr = api.create_container("busybox", "true", name="sdkl-rt",
                               host_config=api.create_host_config(cpu_rt_period=1000,
                                                                  cpu_rt_runtime=500))
    host_config = api.inspect_container(ctr)["HostConfig"]
    assert (host_config["CpuRealtimeRuntime"], host_config["CpuRealtimePeriod"]) == (500, 1000)


def test_bad_limit_is_an_api_error(api) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        api.create_container("busybox", "true", name="sdkl-bad",
                             host_config=api.create_host_config(mem_limit="1m"))
    assert err.value.status_code == 400
    assert err.value.explanation == "Minimum memory limit allowed is 6MB"


def test_stats_no_stream_and_stream(api) -> None:
    """The stats tests: the keys of one sample, and a stream's samples."""
    ctr = api.create_container("busybox", ["sleep", "60"], name="sdkl-stats",
                               host_config=api.create_host_config(mem_limit="32m"))
    api.start(ctr)
    sample = api.stats(ctr, stream=False)
    for key in ("read", "networks", "precpu_stats", "cpu_stats", "memory_stats", "blkio_stats"):
        assert key in sample
    assert sample["memory_stats"]["limit"] == 32 << 20
    stream = api.stats(ctr, decode=True)
    first, second = next(stream), next(stream)
    assert second["precpu_stats"] == first["cpu_stats"]


def test_models_update(daemon) -> None:
    """models_containers_test.py's test_update: cpu_shares 2, then 3."""
    client = daemon.sdk()
    ctr = client.containers.run("busybox", "sleep 60", detach=True, cpu_shares=2,
                                name="sdkl-models")
    try:
        assert ctr.attrs["HostConfig"]["CpuShares"] == 2
        ctr.update(cpu_shares=3)
        ctr.reload()
        assert ctr.attrs["HostConfig"]["CpuShares"] == 3
        code, out = ctr.exec_run(["cat", "/sys/fs/cgroup/cpu/cpu.shares"])
        assert (code, out.decode().strip()) == (0, "3")
    finally:
        ctr.remove(force=True)
        client.close()
