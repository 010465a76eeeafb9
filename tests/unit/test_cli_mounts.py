"""`-v`, `--mount`, `--tmpfs`, `--volumes-from`, `--read-only`: argv to the create body, as the
docker CLI 28 sends it (texts read from `docker create` with those flags)."""
from __future__ import annotations

import os

import pytest

from tether.cli.client import CliError
from tether.cli.runopts import RunOptions, create_body, mount_flag, split_map, volume_flags


def test_volume_flags_split_binds_from_anonymous_volumes():
    binds, volumes = volume_flags(["/h:/c:ro", "name:/n", "/anon", "/h:/c:ro", "c:\\x:/w"])
    assert binds == ["/h:/c:ro", "name:/n", "c:\\x:/w"]
    assert volumes == {"/anon": {}}


def test_relative_host_paths_are_made_absolute():
    binds, _ = volume_flags(["./data:/d:ro", "../up:/u", "~/home:/h", "rel/x:/r"])
    assert binds == [os.path.abspath("data") + ":/d:ro", os.path.abspath("../up") + ":/u",
                     "~/home:/h", "rel/x:/r"]


@pytest.mark.parametrize("spec, text", [
    ("", "invalid empty volume spec"),
    (":/x", "invalid spec: :/x: empty section between colons"),
    ("/x:", "invalid spec: /x:: empty section between colons"),
    ("/x:/y:ro:extra", "invalid spec: /x:/y:ro:extra: too many colons"),
])
def test_volume_flag_errors(spec, text):
    with pytest.raises(CliError) as info:
        volume_flags([spec])
    assert (info.value.message, info.value.code) == (text, 125)


def test_drive_like_sources_are_not_colons():
    assert volume_flags(["a:b:c:d"]) == (["a:b:c:d"], {})
    assert volume_flags(["/"]) == ([], {"/": {}})


def test_mount_flag_shapes():
    assert mount_flag("type=volume,src=v,dst=/mv,volume-nocopy,volume-label=k=v") == {
        "Type": "volume", "Source": "v", "Target": "/mv",
        "VolumeOptions": {"Labels": {"k": "v"}, "DriverConfig": {}, "NoCopy": True}}
    assert mount_flag("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=0700") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}}
    assert mount_flag("type=bind,source=/a,target=/b,readonly,bind-propagation=RSHARED") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True,
        "BindOptions": {"Propagation": "rshared"}}
    assert mount_flag("target=/x") == {"Type": "volume", "Target": "/x"}
    assert mount_flag("type=volume,dst=/o,volume-opt=type=tmpfs,volume-driver=local,ro=false") == {
        "Type": "volume", "Target": "/o", "ReadOnly": False,
        "VolumeOptions": {"DriverConfig": {"Options": {"type": "tmpfs"}, "Name": "local"}}}
    assert mount_flag("type=bind,src=.,dst=/here")["Source"] == os.getcwd()


@pytest.mark.parametrize("value, text", [
    ("type=volume,src=v1,dst=/x,bind-propagation=rshared",
     "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=bind,src=/tmp,target=/y,volume-nocopy",
     "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=volume,target=/y,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
    ("type=tmpfs,target=/y,tmpfs-size=abc", "invalid value for tmpfs-size: abc"),
    ("type=bind,source=/tmp,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
    ("type=bind,src=/tmp,target=/y,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
    ("type=bind,src=/tmp", "target is required"),
    ("type=bind,src=/tmp,target=/y,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=,target=/y", "type is required"),
])
def test_mount_flag_errors(value, text):
    with pytest.raises(ValueError) as info:
        mount_flag(value)
    assert str(info.value) == text


def test_split_map_of_tmpfs_flags():
    assert split_map(["/t1", "/t2:size=2m,noexec", "/t1:size=1m"], ":") == \
        {"/t1": "size=1m", "/t2": "size=2m,noexec"}


def test_create_body_carries_the_mount_flags():
    opts = RunOptions(image="busybox", volumes=["/h:/c", "/anon"],
                      mounts=[{"Type": "volume", "Target": "/m"}], tmpfs=["/t"],
                      volumes_from=["data:ro"], read_only=True)
    body = create_body(opts, environ={})
    host = body["HostConfig"]
    assert (host["Binds"], host["Mounts"], host["Tmpfs"], host["VolumesFrom"],
            host["ReadonlyRootfs"]) == (["/h:/c"], [{"Type": "volume", "Target": "/m"}],
                                        {"/t": ""}, ["data:ro"], True)
    assert body["Volumes"] == {"/anon": {}}
    plain = create_body(RunOptions(image="busybox"), environ={})
    assert plain["Volumes"] is None and plain["HostConfig"]["Binds"] is None
    assert "Mounts" not in plain["HostConfig"] and "Tmpfs" not in plain["HostConfig"]
    assert plain["HostConfig"]["VolumesFrom"] is None


def test_ram_in_bytes():
    from tether.rules.units import ram_in_bytes

    assert [ram_in_bytes(v) for v in ("64", "1k", "1m", "1.5g", "2KiB", "3 MB", "1t")] == \
        [64, 1024, 1 << 20, 3 << 29, 2048, 3 << 20, 1 << 40]
    for bad in ("abc", "1x", "-1m", "", "1.2.3m"):
        with pytest.raises(ValueError):
            ram_in_bytes(bad)


@pytest.mark.parametrize("text,error", [
    # the docker CLI 28's own answers (`docker create -m TEXT`), go-units 0.5's parseSize
    ("1q", "invalid suffix: 'q'"), ("10Q", "invalid suffix: 'q'"), ("1qb", "invalid suffix: 'qb'"),
    ("1kbb", "invalid suffix: 'kbb'"), ("1bb", "invalid suffix: 'bb'"), ("x", "invalid size: 'x'"),
    ("-1k", "invalid size: '-1k'"), ("1.2.3k", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ("1  k", 'strconv.ParseFloat: parsing "1 ": invalid syntax'),
    (" 1k", 'strconv.ParseFloat: parsing " 1": invalid syntax'),
])
def test_ram_in_bytes_errors_as_the_docker_cli(text, error):
    from tether.rules.units import ram_in_bytes

    with pytest.raises(ValueError) as exc:
        ram_in_bytes(text)
    assert str(exc.value) == error


def test_ram_in_bytes_reads_what_the_docker_cli_reads():
    from tether.rules.units import ram_in_bytes

    assert [ram_in_bytes(v) for v in ("1 k", "1.k", ".5k", "1e3", "1b", "1kib")] == \
        [1024, 1024, 512, 1000, 1, 1024]
