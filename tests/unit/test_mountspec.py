"""Docker's mount grammar: -v strings, --mount objects, --tmpfs, --volumes-from and the plan.

Every error text and status below was read from Docker 20.10 (the reference engine) answering
the same request; tests/integration/test_mounts_vs_docker.py checks them against it again.
"""
from __future__ import annotations

import pytest

from tether.engine import mountspec
from tether.engine.archive import check_writable
from tether.engine.mountspec import MountError, MountPoint
from tether.rules.errors import ApiError


def exists(path: str) -> bool:
    return path in ("/srv", "/tmp")


def error_of(call, *args) -> tuple[str, int]:
    with pytest.raises(MountError) as info:
        call(*args)
    return str(info.value), info.value.status


# ---- -v ------------------------------------------------------------------------------------

def test_bind_with_modes():
    mp = mountspec.parse_bind("/srv/a:/a:ro,z")
    assert (mp.type, mp.source, mp.destination, mp.mode, mp.rw, mp.propagation) == \
        ("bind", "/srv/a", "/a", "ro,z", False, "rprivate")
    assert mp.create_source and mp.spec_source == "/srv/a"


def test_bind_paths_are_cleaned_and_propagation_kept():
    mp = mountspec.parse_bind("/srv//a/:/b/../c:rshared")
    assert (mp.source, mp.destination, mp.propagation, mp.rw) == ("/srv/a", "/c", "rshared", True)


def test_named_and_anonymous_volumes():
    named = mountspec.parse_bind("data:/var/lib/data:ro,nocopy")
    assert (named.type, named.name, named.rw, named.copy_data, named.anonymous) == \
        ("volume", "data", False, False, False)
    anonymous = mountspec.parse_bind("/scratch")
    assert (anonymous.type, anonymous.name, anonymous.copy_data, anonymous.anonymous) == \
        ("volume", "", True, True)


@pytest.mark.parametrize("raw, text", [
    ("/x:rel", "invalid volume specification: '/x:rel': invalid mount config for type \"bind\": "
               "invalid mount path: 'rel' mount path must be absolute"),
    ("/x:/y:bogus", "invalid mode: bogus"),
    ("/x:/y:rw,ro", "invalid mode: rw,ro"),
    ("/x:/y:ro,ro", "invalid mode: ro,ro"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/x:/", "invalid volume specification: '/x:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("name:/y:rprivate", "invalid volume specification: 'name:/y:rprivate': invalid mount config "
                         "for type \"volume\": field BindOptions must not be specified"),
    ("/x:/y:ro,Z,rshared,nocopy", "invalid volume specification: '/x:/y:ro,Z,rshared,nocopy': "
                                  "invalid mount config for type \"bind\": field VolumeOptions "
                                  "must not be specified"),
    ("/foo:rw", "invalid volume specification: '/foo:rw'"),
    (":/x", "invalid volume specification: ':/x'"),
])
def test_bind_errors_are_dockerds_unwrapped_errors(raw, text):
    assert error_of(mountspec.parse_bind, raw) == (text, 500)


def test_valid_modes():
    assert mountspec.valid_mode("ro,Z,rslave,nocopy")
    assert not mountspec.valid_mode("z,Z")
    assert not mountspec.valid_mode("shared,slave")
    assert not mountspec.valid_mode("RO")


# ---- --mount --------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg, text", [
    ({"Type": "bind", "Source": "/nonexist", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: /nonexist'),
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must '
                                       "not be empty"),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be "
     "absolute"),
    ({"Type": "bind", "Source": "/srv", "Target": "/x", "BindOptions": {"Propagation": "bogus"}},
     'invalid mount config for type "bind": invalid propagation mode: bogus'),
    ({"Type": "bind", "Source": "/srv", "Target": "/"},
     "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ({"Type": "tmpfs", "Source": "/x", "Target": "/y"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "foo", "Target": "/x"}, 'invalid mount config for type "foo": mount type unknown'),
    ({"Type": "volume", "Target": "rel"},
     "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be "
     "absolute"),
    ({"Type": "volume", "Source": "", "Target": "/x", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous '
     "volumes"),
    ({"Type": "volume", "Target": ""}, 'invalid mount config for type "volume": field Target '
                                       "must not be empty"),
])
def test_mount_errors(cfg, text):
    assert error_of(mountspec.parse_mount, cfg, exists) == (text, 400)


def test_mount_objects():
    bind = mountspec.parse_mount({"Type": "bind", "Source": "/srv", "Target": "/m",
                                  "ReadOnly": True, "BindOptions": {"NonRecursive": True}}, exists)
    assert (bind.source, bind.rw, bind.mode, bind.propagation, bind.non_recursive,
            bind.create_source) == ("/srv", False, "", "rprivate", True, False)
    volume = mountspec.parse_mount({"Type": "volume", "Source": "v", "Target": "/v",
                                    "VolumeOptions": {"NoCopy": True, "Labels": {"k": "v"},
                                                      "DriverConfig": {}}}, exists)
    assert (volume.name, volume.copy_data, volume.volume_options["Labels"]) == ("v", False,
                                                                                 {"k": "v"})
    tmpfs = mountspec.parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {
        "SizeBytes": 1 << 20, "Mode": 0o700}}, exists)
    assert tmpfs.tmpfs_data == "mode=700,size=1m"


def test_tmpfs_destination_rules():
    assert error_of(mountspec.validate_tmpfs_destination, "rel") == \
        ("invalid mount path: 'rel' mount path must be absolute", 400)
    assert error_of(mountspec.validate_tmpfs_destination, "/") == \
        ("invalid specification: destination can't be '/'", 400)


# ---- --volumes-from -------------------------------------------------------------------------

def test_volumes_from():
    assert mountspec.parse_volumes_from("data") == ("data", "rw")
    assert mountspec.parse_volumes_from("data:ro") == ("data", "ro")
    for spec, mode in (("x:bogus", "bogus"), ("x:rshared", "rshared"), ("x:nocopy", "nocopy")):
        assert error_of(mountspec.parse_volumes_from, spec) == (f"invalid mode: {mode}", 400)
    assert error_of(mountspec.parse_volumes_from, "")[0] == \
        "volumes-from specification cannot be an empty string"


def test_inherited_mounts_keep_read_only_and_never_copy():
    source = MountPoint(type="volume", destination="/d", name="v", rw=True, copy_data=True,
                        mode="z")
    assert mountspec.inherited(source, "ro").rw is False
    assert mountspec.inherited(source, "ro").mode == ""
    assert mountspec.inherited(source, "rw").rw is True
    assert mountspec.inherited(source, "rw").copy_data is False
    assert not mountspec.inherited(MountPoint(type="bind", destination="/b", rw=False), "rw").rw


# ---- the plan -------------------------------------------------------------------------------

def plan(binds=(), mounts=(), tmpfs=None, others=(), volumes=()):
    return mountspec.plan(binds, mounts, tmpfs or {}, others, volumes, exists)


def test_plan_modes_as_dockerd_reports_them():
    points = {mp.destination: mp for mp in plan(
        binds=["named:/n", "named2:/n2:ro,nocopy", "/srv:/b"],
        mounts=[{"Type": "volume", "Target": "/mv"}], volumes=["/anon"])}
    assert {d: mp.mode for d, mp in points.items()} == \
        {"/n": "z", "/n2": "ro,nocopy", "/b": "", "/mv": "z", "/anon": ""}


@pytest.mark.parametrize("kwargs", [
    {"binds": ["/x:/y", "/z:/y"]},
    {"binds": ["/x:/y"], "tmpfs": {"/y": ""}},
    {"binds": ["/x:/y"], "mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/y"}]},
])
def test_duplicates(kwargs):
    with pytest.raises(MountError, match="^Duplicate mount point: /y$"):
        plan(**kwargs)


def test_tmpfs_mount_and_tmpfs_flag_may_share_a_path():
    points = plan(mounts=[{"Type": "tmpfs", "Target": "/y"}], tmpfs={"/y": ""})
    assert [mp.type for mp in points] == ["tmpfs"]


def test_binds_replace_volumes_from_and_image_volumes_yield():
    inherited = MountPoint(type="volume", destination="/data", name="old")
    points = plan(binds=["/srv:/data"], others=[inherited], volumes=["/data", "/other/"])
    assert [(mp.destination, mp.type) for mp in points] == [("/data", "bind"),
                                                             ("/other", "volume")]
    assert plan(others=[inherited], volumes=["/data"]) == [inherited]
    assert plan(tmpfs={"/data": ""}, volumes=["/data"]) == []


# ---- OCI mounts -----------------------------------------------------------------------------

def test_oci_mounts_options():
    points = [MountPoint(type="bind", destination="/b", source="/srv", rw=False,
                         propagation="rprivate"),
              MountPoint(type="volume", destination="/v", source="/vol/_data"),
              MountPoint(type="bind", destination="/nr", source="/srv", non_recursive=True,
                         propagation="rshared"),
              MountPoint(type="tmpfs", destination="/t", tmpfs_data="size=1m")]
    oci = mountspec.oci_mounts(points, {"/run": "size=2m,exec"})
    by_dest = {m["destination"]: m for m in oci}
    assert by_dest["/b"]["options"] == ["rbind", "ro", "rprivate"]
    assert by_dest["/v"] == {"destination": "/v", "type": "bind", "source": "/vol/_data",
                             "options": ["rbind"]}
    assert by_dest["/nr"]["options"] == ["bind", "rshared"]
    assert by_dest["/t"]["options"] == ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]
    assert by_dest["/run"]["options"] == ["nosuid", "nodev", "rprivate", "size=2m", "exec"]
    assert mountspec.rootfs_propagation(points) == "shared"


def test_sort_mounts_parents_first_stable():
    oci = [{"destination": d} for d in ("/etc/hosts", "/etc", "/a/b/c", "/x", "/etc/hostname")]
    assert [m["destination"] for m in mountspec.sort_mounts(oci)] == \
        ["/etc", "/x", "/etc/hosts", "/etc/hostname", "/a/b/c"]


def test_tmpfs_option_merge():
    assert mountspec.merge_tmpfs_options("") == ["noexec", "nosuid", "nodev", "rprivate"]
    assert mountspec.merge_tmpfs_options("ro,rw,shared,defaults,size=1,size=2") == \
        ["noexec", "nosuid", "nodev", "rw", "shared", "size=2"]
    assert error_of(mountspec.merge_tmpfs_options, "bogus")[0] == 'invalid tmpfs option ["bogus"]'
    assert error_of(mountspec.merge_tmpfs_options, "foo=bar")[0] == \
        'invalid tmpfs option ["foo" "bar"]'


def test_tmpfs_sizes():
    assert mountspec.tmpfs_size_text(3 << 30) == "3g"
    assert mountspec.tmpfs_size_text(1536) == "1536"
    assert mountspec.tmpfs_data({"SizeBytes": 2048}, True) == "ro,size=2k"


# ---- reports and cp rules -------------------------------------------------------------------

def test_views_in_dockerds_key_order():
    volume = MountPoint(type="volume", destination="/v", name="n", source="/d/n/_data",
                        driver="local", mode="z")
    assert list(volume.view()) == ["Type", "Name", "Source", "Destination", "Driver", "Mode",
                                   "RW", "Propagation"]
    assert list(MountPoint(type="bind", destination="/b", source="/s").view()) == \
        ["Type", "Source", "Destination", "Mode", "RW", "Propagation"]
    assert MountPoint.from_json(volume.to_json()) == volume


def test_covers():
    mp = MountPoint(type="bind", destination="/data")
    assert mp.covers("/data") and mp.covers("/data/x/y")
    assert not mp.covers("/database") and not mp.covers("/")


def test_cp_into_read_only_places():
    points = [MountPoint(type="bind", destination="/ro", rw=False),
              MountPoint(type="volume", destination="/ro/rw", rw=True)]
    check_writable(points, True, "/ro/rw/sub")  # the deepest mount decides
    with pytest.raises(ApiError) as info:
        check_writable(points, False, "/ro/x")
    assert (info.value.message, info.value.status) == ("mounted volume is marked read-only", 500)
    with pytest.raises(ApiError, match="^container rootfs is marked read-only$"):
        check_writable(points, True, "/etc")
    check_writable(points, False, "/etc")


def test_shared_and_slave_binds_need_a_propagating_source():
    shared = MountPoint(type="bind", destination="/d", source="/srv/d", propagation="rshared")
    slave = MountPoint(type="bind", destination="/d", source="/srv/d", propagation="slave")
    private = MountPoint(type="bind", destination="/d", source="/srv/d", propagation="rprivate")
    assert mountspec.propagation_error(shared, "/", "shared:1") is None
    assert mountspec.propagation_error(shared, "/srv", "master:3") == \
        "path /srv/d is mounted on /srv but it is not a shared mount"
    assert mountspec.propagation_error(slave, "/srv", "master:3") is None
    assert mountspec.propagation_error(slave, "/", "") == \
        "path /srv/d is mounted on / but it is not a shared or slave mount"
    assert mountspec.propagation_error(private, "/", "") is None
