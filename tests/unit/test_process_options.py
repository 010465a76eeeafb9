"""The process and log option rules (rules/process_options.py, rules/log_options.py): dockerd
20.10's texts and what each option becomes in the OCI config."""
from __future__ import annotations

import pytest

from tether.rules import log_options, process_options as po
from tether.rules.errors import ApiError


def test_parse_ulimit_as_go_units() -> None:
    assert po.parse_ulimit("nofile=100:200") == {"Name": "nofile", "Soft": 100, "Hard": 200}
    assert po.parse_ulimit("nproc=50") == {"Name": "nproc", "Soft": 50, "Hard": 50}
    for text, message in [("nofile", "invalid ulimit argument: nofile"),
                          ("foo=1:2", "invalid ulimit type: foo"),
                          ("nofile=300:200",
                           "ulimit soft limit must be less than or equal to hard limit: 300 > 200"),
                          ("nofile=x", 'invalid ulimit soft value x: strconv.ParseInt: parsing '
                           '"x": invalid syntax')]:
        with pytest.raises(ValueError) as info:
            po.parse_ulimit(text)
        assert str(info.value) == message


def test_rlimits_merge_daemon_defaults_and_map_minus_one_to_infinity() -> None:
    defaults = {"nofile": {"Name": "nofile", "Soft": 1, "Hard": 2},
                "core": {"Name": "core", "Soft": 0, "Hard": 0}}
    given = [{"Name": "nofile", "Soft": 10, "Hard": 20}, {"Name": "stack", "Soft": -1, "Hard": -1}]
    assert po.rlimits(given, defaults) == [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
        {"type": "RLIMIT_STACK", "soft": 2 ** 64 - 1, "hard": 2 ** 64 - 1},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    assert po.rlimits(None, {}) == []


def test_create_checks_texts() -> None:
    po.validate_create(0, 1000)
    with pytest.raises(ApiError) as info:
        po.validate_create(-1, 0)
    assert (info.value.status, info.value.message) == (400, "SHM size can not be less than 0")
    with pytest.raises(ApiError) as info:
        po.validate_create(0, -1001)
    assert info.value.message == "Invalid value -1001, range for oom score adj is [-1000, 1000]"
    assert po.shm_options(1048576)[-1] == "size=1048576"
    assert po.shm_options(0)[-1] == "size=67108864"


def test_ipc_sysctls_refused_with_host_ipc() -> None:
    assert po.sysctls({"kernel.shmmax": "1"}, "private") == {"kernel.shmmax": "1"}
    assert po.sysctls({"net.core.somaxconn": "1"}, "host")
    for key in ("kernel.shmmax", "fs.mqueue.msg_max"):
        with pytest.raises(ApiError) as info:
            po.sysctls({key: "1"}, "host")
        assert info.value.status == 500
        assert f'sysctl "{key}" is not allowed in the hosts ipc namespace' in info.value.message


def test_init_rule() -> None:
    assert po.wants_init(None, "", daemon_init=True)
    assert not po.wants_init(False, "", daemon_init=True)
    assert po.wants_init(True, "", daemon_init=False)
    assert not po.wants_init(True, "host", daemon_init=False)
    assert po.init_args(["sh", "-c", "x"]) == ["/sbin/docker-init", "--", "sh", "-c", "x"]
    assert po.init_mount("/usr/bin/tini-static") == {
        "destination": "/sbin/docker-init", "type": "bind", "source": "/usr/bin/tini-static",
        "options": ["bind", "ro"]}


def test_device_cgroup_rules() -> None:
    assert po.device_cgroup_rules(["c 1:7 rw", "a *:* m", "b 8:* r"]) == [
        {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rw"},
        {"allow": True, "type": "a", "access": "m"},
        {"allow": True, "type": "b", "major": 8, "access": "r"}]
    with pytest.raises(ApiError) as info:
        po.device_cgroup_rules(["x 1:2 rwm"])
    assert info.value.message == "invalid device cgroup rule format: 'x 1:2 rwm'"


def test_mac_rules() -> None:
    assert po.valid_mac("02:42:ac:11:00:99")
    assert not po.valid_mac("zz") and not po.valid_mac("02:42:ac:11:00")
    assert po.mac_error("zz").message == "address zz: invalid MAC address"
    assert po.endpoint_mac("default", {"bridge": "02:00:00:00:00:01"}) == "02:00:00:00:00:01"
    assert po.endpoint_mac("net1", {"net1": "m", "net2": ""}) == "m"
    with pytest.raises(ApiError) as info:  # another network's endpoint: not applied
        po.endpoint_mac("net1", {"net2": "m"})
    assert (info.value.status, info.value.message) == (
        400, "tether does not support EndpointSettings.MacAddress yet")


def test_log_config_settled_with_daemon_defaults() -> None:
    default = ("json-file", {"max-size": "10m"})
    assert log_options.settle("", None, *default) == default
    assert log_options.settle("", {"max-size": "1k"}, *default) == ("json-file", {"max-size": "1k"})
    assert log_options.settle("local", None, *default) == ("local", {})
    assert log_options.settle("none", {"x": "1"}, *default)[0] == "none"


@pytest.mark.parametrize("kind,config,message", [
    ("foo", {}, 'error looking up logging plugin foo: plugin "foo" not found'),
    ("json-file", {"bar": "2"}, "unknown log opt 'bar' for json-file log driver"),
    ("local", {"bar": "2"}, "unknown log opt 'bar' for log driver local"),
    ("json-file", {"mode": "foo"}, "logger: logging mode not supported: foo"),
])
def test_log_config_refused_at_create(kind, config, message) -> None:
    with pytest.raises(ApiError) as info:
        log_options.validate(kind, config)
    assert (info.value.status, info.value.message) == (400, message)


def test_log_options_tether_does_not_apply_are_named() -> None:
    assert log_options.unapplied("json-file", {"max-size": "1k", "max-file": "2"}) is None
    assert log_options.unapplied("", {"mode": "blocking"}) is None
    assert log_options.unapplied("none", {"anything": "1"}) is None
    assert log_options.unapplied("local", {"compress": "true"}) == ".Config.compress"
    assert log_options.unapplied("json-file", {"mode": "non-blocking"}) == ".Config.mode"
    assert log_options.unapplied("json-file", {"max-buffer-size": "1m"}) == \
        ".Config.max-buffer-size"
    assert log_options.unapplied("syslog", {}) == ".Type"
    assert log_options.unapplied("foo", {"x": "1"}) is None  # dockerd's plugin text, later
    assert log_options.unapplied("json-file", {"x": "1"}) is None  # dockerd's unknown option


@pytest.mark.parametrize("config,message", [
    ({"Type": "json-file", "Config": {"max-size": "foo"}}, "invalid size: 'foo'"),
    ({"Type": "json-file", "Config": {"max-size": "-1"}}, "invalid size: '-1'"),
    ({"Type": "json-file", "Config": {"max-size": "0"}}, "max-size must be a positive number"),
    ({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "0"}},
     "max-file cannot be less than 1"),
    ({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "x"}},
     'strconv.Atoi: parsing "x": invalid syntax'),
    ({"Type": "local", "Config": {"max-size": "-1"}},
     "invalid value for max-size: -1: invalid size: '-1'"),
])
def test_log_values_refused_at_start(config, message) -> None:
    with pytest.raises(ApiError) as info:
        log_options.limits(config["Type"], config["Config"])
    assert (info.value.status, info.value.message) == (
        500, f"failed to initialize logging driver: {message}")


def test_log_limits_in_go_units() -> None:
    def limits(kind: str, **config: str) -> tuple:
        return log_options.limits(kind, config)
    assert limits("json-file") == (None, 1)
    assert limits("json-file", **{"max-file": "3"}) == (None, 1)  # no size: nothing rotates
    assert limits("json-file", **{"max-size": "1k"}) == (1000, 1)
    assert limits("json-file", **{"max-size": "1.5MB", "max-file": "3"}) == (1500000, 3)
    assert limits("local") == (20_000_000, 5)
    assert limits("none", **{"max-size": "x"}) == (None, 1)
    assert log_options.writer_size_max("json-file", {"max-size": "1k"}) == 1000  # conmon's own
    assert log_options.writer_size_max("json-file", {"max-size": "1k", "max-file": "2"}) \
        is None  # the daemon rotates


def test_group_add_resolved_in_the_root(tmp_path) -> None:
    """Names and GIDs from the container's /etc/group, numbers as given, runc's texts; a
    symlinked /etc/group leading out of the root resolves inside it (no host file read)."""
    from tether.runtime.user import additional_groups
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("root:x:0:\naudio:x:29:\nstaff:x:50:bob\n")
    assert additional_groups(str(tmp_path), ["audio", "1234", "50", "audio"]) == [29, 1234, 50]
    assert additional_groups(str(tmp_path), None) == []
    with pytest.raises(ApiError) as info:
        additional_groups(str(tmp_path), ["nosuch"])
    assert (info.value.status, info.value.message) == (
        500, "Unable to find group nosuch: no matching entries in group file")
    with pytest.raises(ApiError) as info:
        additional_groups(str(tmp_path), ["-5"])
    assert info.value.message == "uids and gids must be in range 0-2147483647"
    (tmp_path / "etc" / "group").unlink()
    (tmp_path / "etc" / "group").symlink_to("/etc/group")  # the host's has a root group
    with pytest.raises(ApiError):
        additional_groups(str(tmp_path), ["root"])


def test_host_devices(tmp_path) -> None:
    from tether.runtime.devices import host_devices
    nodes, rules = host_devices([{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull",
                                  "CgroupPermissions": "rw"}])
    assert nodes == [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                      "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    for path, reason in (("/dev/nope", "no such file or directory"),
                         (str(tmp_path), "not a device node")):
        with pytest.raises(ApiError) as info:
            host_devices([{"PathOnHost": path, "PathInContainer": "/dev/x",
                           "CgroupPermissions": "rwm"}])
        assert info.value.message == ("error gathering device information while adding custom "
                                      f'device "{path}": {reason}')
