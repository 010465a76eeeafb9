"""A start makes the endpoints while runc creates the container, unless net.* sysctls need
its interfaces first or volumes' mount events must follow the connect; and two steps run
together report the first one's error."""
from __future__ import annotations

import asyncio

import pytest

from tether.engine.run_resources import all_then_first_error
from tether.engine.mountspec import MountPoint
from tether.engine.records import Container
from tether.engine.run_config import endpoints_during_create
from tether.spec.types import Config, HostConfig


def _container(sysctls=None, points=()) -> Container:
    c = Container(id="c" * 64, name="/c", created="", image_id="", config=Config(),
                  host_config=HostConfig(sysctls=sysctls), path="true", args=[])
    c.mounts = [mp.to_json() for mp in points]
    return c


@pytest.mark.parametrize("sysctls, together", [
    (None, True),
    ({}, True),
    ({"kernel.shmmax": "1024"}, True),
    ({"net.ipv4.conf.eth0.rp_filter": "2"}, False),
    ({"net.ipv4.ip_forward": "1"}, False),
])
def test_endpoints_wait_for_net_sysctls(sysctls, together):
    assert endpoints_during_create(_container(sysctls)) is together


def test_endpoints_come_before_volumes_mount_events():
    volume = MountPoint(type="volume", name="v", destination="/data")
    bind = MountPoint(type="bind", source="/srv", destination="/srv")
    assert endpoints_during_create(_container(points=[bind]))
    assert not endpoints_during_create(_container(points=[bind, volume]))


def test_every_step_ends_before_the_first_error_is_raised():
    ended: list[str] = []

    async def step(name: str, delay: float, fail: bool) -> None:
        await asyncio.sleep(delay)
        ended.append(name)
        if fail:
            raise RuntimeError(name)

    with pytest.raises(RuntimeError, match="^network$"):
        asyncio.run(all_then_first_error(step("network", 0.02, True),
                                         step("runc", 0.01, True)))
    assert sorted(ended) == ["network", "runc"]
    ended.clear()
    with pytest.raises(RuntimeError, match="^runc$"):
        asyncio.run(all_then_first_error(step("network", 0.0, False), step("runc", 0.03, True)))
    assert ended == ["network", "runc"]
