"""VolumeService on a temporary data root: records, errors, referrers, prune, usage, events.
Mounting `--opt` volumes needs root and is covered by the integration tests."""
import asyncio
import json
import re

import pytest

from tether.engine.events import EventBus
from tether.engine.volume_rules import ANONYMOUS_LABEL
from tether.engine.volumes import VolumeService, rfc3339_now
from tether.rules.errors import ApiError, BadRequest, Conflict, NotFound


@pytest.fixture
def service(tmp_path):
    return VolumeService(tmp_path / "volumes")


def test_create_writes_a_record_and_the_data_dir(service, tmp_path):
    volume = service.create("data", labels={"a": "b"})
    assert volume.mountpoint == tmp_path / "volumes" / "data" / "_data"
    assert volume.mountpoint.is_dir()
    record = json.loads((tmp_path / "volumes" / "data" / "volume.json").read_text())
    assert record["Name"] == "data" and record["Labels"] == {"a": "b"}
    assert volume.inspect() == {
        "CreatedAt": volume.created_at, "Driver": "local", "Labels": {"a": "b"},
        "Mountpoint": str(volume.mountpoint), "Name": "data", "Options": None, "Scope": "local"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", volume.created_at)


def test_inspect_maps_are_in_key_order(service):
    volume = service.create("ordered", driver_opts={"type": "tmpfs", "device": "tmpfs"},
                            labels={"z": "1", "a": "2"})
    assert list(volume.inspect()["Options"]) == ["device", "type"]
    assert list(volume.inspect()["Labels"]) == ["a", "z"]


def test_records_survive_a_new_service(service, tmp_path):
    service.create("keep", driver_opts={"type": "tmpfs", "device": "tmpfs"}, labels={})
    (service.get("keep").mountpoint / "file").write_text("data")
    again = VolumeService(tmp_path / "volumes")
    volume = again.get("keep")
    assert volume.options == {"type": "tmpfs", "device": "tmpfs"} and volume.labels == {}
    assert (volume.mountpoint / "file").read_text() == "data"


def test_a_directory_without_a_whole_record_is_not_a_volume(tmp_path):
    half = tmp_path / "volumes" / "half"
    (half / "_data").mkdir(parents=True)
    (half / ".volume.json.tmp123-4").write_text("{")
    service = VolumeService(tmp_path / "volumes")
    assert service.list({}) == []
    assert not (half / ".volume.json.tmp123-4").exists()
    assert service.create("half").mountpoint.is_dir()  # the name can be used again


def test_existing_name_returns_the_same_volume(service):
    first = service.create("same", labels={"x": "1"})
    second = service.create("same", labels={"y": "2"})
    assert second is first and second.labels == {"x": "1"}


def test_anonymous_volumes_get_a_random_name_and_docker_label(service):
    volume = service.create(anonymous=True)
    assert re.fullmatch(r"[0-9a-f]{64}", volume.name)
    assert volume.anonymous and volume.labels == {ANONYMOUS_LABEL: ""}
    assert not service.create().anonymous


def test_create_errors(service):
    with pytest.raises(BadRequest, match=r"^create a: volume name is too short"):
        service.create("a")
    with pytest.raises(BadRequest, match=r'^create vx: invalid option: "foo"$'):
        service.create("vx", driver_opts={"foo": "bar"})
    with pytest.raises(NotFound, match=r'^create vn: error looking up volume plugin nope: '
                                       r'plugin "nope" not found$'):
        service.create("vn", driver="nope")
    service.create("exists")
    with pytest.raises(NotFound, match="plugin"):  # the driver is looked up even for a known name
        service.create("exists", driver="nope")
    with pytest.raises(ApiError, match=r"^create x+: error while creating volume root path '.*': "
                                       r"mkdir .*: file name too long$"):
        service.create("x" * 300)
    assert [v.name for v in service.list({})] == ["exists"]


def test_get_missing(service):
    with pytest.raises(NotFound, match=r"^get nosuch: no such volume$"):
        service.get("nosuch")


def test_list_uses_referrers_for_dangling(service):
    for name in ("used", "free"):
        service.create(name)
    service.referrers = lambda name: ["c1"] if name == "used" else []
    assert [v.name for v in service.list({"dangling": ["true"]})] == ["free"]
    assert [v.name for v in service.list({"dangling": ["false"]})] == ["used"]


def test_remove(service):
    volume = service.create("gone")
    (volume.mountpoint / "f").write_text("data")
    service.remove("gone")
    assert list(service.root.iterdir()) == []
    with pytest.raises(NotFound, match=r"^get gone: no such volume$"):
        service.remove("gone")
    service.remove("gone", force=True)


def test_remove_in_use_is_refused_even_with_force(service):
    service.create("busy")
    service.referrers = lambda name: ["aaa", "bbb"]
    for force in (False, True):
        with pytest.raises(Conflict, match=r"^remove busy: volume is in use - \[aaa, bbb\]$"):
            service.remove("busy", force=force)
    assert service.get("busy")


def test_prune_spares_named_used_and_option_volumes(service):
    anon = service.create(anonymous=True)
    (anon.mountpoint / "f").write_bytes(b"x" * 1500)
    service.create("named")
    used = service.create(anonymous=True)
    service.create("opts", driver_opts={"type": "tmpfs", "device": "tmpfs"}, anonymous=True)
    service.referrers = lambda name: ["c"] if name == used.name else []
    assert asyncio.run(service.prune({})) == ([anon.name], 1500)
    assert sorted(v.name for v in service.list({})) == sorted(["named", used.name, "opts"])
    assert asyncio.run(service.prune({"all": ["true"]})) == (["named"], 0)
    assert asyncio.run(service.prune({}, api_version=(1, 41))) == ([], 0)
    assert sorted(p.name for p in service.root.iterdir()) == sorted([used.name, "opts"])


def test_remove_on_the_loop_erases_in_a_thread(service):
    async def scenario():
        service.create("bg")
        service.remove("bg")
        return [p.name for p in service.root.iterdir()]

    left = asyncio.run(scenario())  # asyncio.run waits for the executor's threads to finish
    assert all(name.startswith(".removing-bg-") for name in left)
    assert list(service.root.iterdir()) == []


def test_a_removal_cut_short_is_finished_at_load(service, tmp_path):
    trash = tmp_path / "volumes" / ".removing-old-1234"
    (trash / "_data").mkdir(parents=True)
    service.create("kept")
    again = VolumeService(tmp_path / "volumes")
    assert not trash.exists() and [v.name for v in again.list({})] == ["kept"]


def test_disk_usage_counts_plain_volumes(service):
    volume = service.create("sized")
    (volume.mountpoint / "a").write_bytes(b"1" * 10)
    service.create("opts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    service.referrers = lambda name: ["c1", "c2"]
    [entry] = asyncio.run(service.disk_usage())
    assert entry["Name"] == "sized" and entry["UsageData"] == {"Size": 10, "RefCount": 2}



def test_plain_volume_mount_tracks_users(service):
    volume = service.create("plain")
    assert service.mount("plain", "c1") == volume.mountpoint
    service.mount("plain", "c2")
    service.unmount("plain", "c1")
    service.unmount("plain", "c2")
    service.unmount("plain", "never-mounted")
    service.unmount("unknown", "c1")
    with pytest.raises(NotFound):
        service.mount("unknown", "c1")


def test_mount_without_device_is_docker_error(service):
    service.create("nodev", driver_opts={"type": "tmpfs", "device": ""})
    with pytest.raises(ApiError, match=r"^error while mounting volume '.*/nodev/_data': "
                                       r"missing device in volume options$"):
        service.mount("nodev", "c1")


def test_events(tmp_path):
    async def scenario():
        bus = EventBus()
        service = VolumeService(tmp_path / "volumes", events=bus)
        service.create("ev")
        service.mount("ev", "c1")
        service.unmount("ev", "c1")
        service.remove("ev")
        service.create("ev2", anonymous=True)
        await service.prune({})
        return [(m["Action"], m["Actor"]["ID"], m["Actor"]["Attributes"])
                for m in bus.history(None, None)]

    assert asyncio.run(scenario()) == [
        ("create", "ev", {"driver": "local"}),
        ("unmount", "ev", {"container": "c1", "driver": "local"}),
        ("destroy", "ev", {"driver": "local"}),
        ("create", "ev2", {"driver": "local"}),
        ("prune", "", {"reclaimed": "0"}),  # no destroy for a pruned volume, as dockerd
    ]


def test_rfc3339_now_has_no_fraction():
    assert "." not in rfc3339_now()
