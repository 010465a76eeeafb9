"""A container being created holds its volumes: a `volume rm` or `volume prune` that runs while
its create waits (on the copy-up of image content, say) must not take them from under it."""
from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from tether.engine.containers import ContainerService
from tether.engine.paths import Paths
from tether.engine.volumes import VolumeService
from tether.rules.errors import ApiError, Conflict


class Images:
    """The one image these tests create containers from."""

    def resolve(self, ref: str) -> SimpleNamespace:
        return SimpleNamespace(id="sha256:" + "ab" * 32, config={"config": {"Cmd": ["true"]}})


def service(tmp_path: Path) -> tuple[ContainerService, VolumeService]:
    volumes = VolumeService(tmp_path / "volumes")
    containers = ContainerService(Paths(tmp_path / "data", tmp_path / "exec"), Images(),
                                  runtime=None, network=None, volumes=volumes,
                                  host_resolv=tmp_path / "none", host_hosts=tmp_path / "none")
    volumes.referrers = containers.volume_users
    return containers, volumes


def test_volumes_of_a_container_being_created_are_in_use(tmp_path: Path) -> None:
    containers, volumes = service(tmp_path)

    async def scenario() -> None:
        copying, done = asyncio.Event(), asyncio.Event()

        async def slow_copy_up(c, lowers) -> None:
            copying.set()
            await done.wait()
        containers.container_mounts.copy_up = slow_copy_up
        body = {"Image": "busybox", "HostConfig": {"Binds": ["named:/data"]},
                "Volumes": {"/anon": {}}}
        create = asyncio.create_task(containers.create(body, "racer"))
        await copying.wait()
        [anonymous] = [v.name for v in volumes.list({}) if v.anonymous]
        for name in ("named", anonymous):
            with pytest.raises(Conflict):
                volumes.remove(name)
        assert await volumes.prune({"all": ["true"]}) == ([], 0)
        done.set()
        c = await create
        assert sorted(mp.name for mp in c.mount_points) == sorted(["named", anonymous])
        assert all(mp.source and Path(mp.source).is_dir() for mp in c.mount_points)

    asyncio.run(scenario())


def test_failed_create_frees_and_removes_its_anonymous_volumes(tmp_path: Path) -> None:
    containers, volumes = service(tmp_path)

    async def failing_copy_up(c, lowers) -> None:
        raise ApiError("failed to copy files: no space left on device", 500)
    containers.container_mounts.copy_up = failing_copy_up
    body = {"Image": "busybox", "HostConfig": {"Binds": ["named:/data"]}, "Volumes": {"/anon": {}}}
    with pytest.raises(ApiError):
        asyncio.run(containers.create(body, "failing"))
    assert [v.name for v in volumes.list({})] == ["named"]
    assert volumes.referrers("named") == []
