"""The typed container spec: its fields are the API's, parse and render are each other's
inverse, dockerd's create-time checks and defaults, the support table's refusals, and the OCI
compiler's reading of the spec."""
from __future__ import annotations

import pytest

from tether.rules import apitypes
from tether.rules import resources as resource_rules
from tether.rules.errors import ApiError, BadRequest
from tether.runtime import oci
from tether.spec import create, support
from tether.spec.fields import is_default, parse, render, walk
from tether.spec.types import Config, CreateSpec, EndpointSettings, HostConfig

# what this kernel can limit, as the create checks are given it
FACTS = resource_rules.HostFacts(ncpu=2, cpus="0-1", kernel_memory=False, cpu_realtime=True)

STRUCTS = [(HostConfig, apitypes.HOST_CONFIG), (Config, apitypes.CONTAINER_CONFIG),
           (EndpointSettings, apitypes.ENDPOINT_SETTINGS)]


@pytest.mark.parametrize("cls,go", STRUCTS)
def test_every_api_field_is_declared_once_in_go_order(cls, go) -> None:
    names = [path for path, _ in walk(cls)]
    assert sorted(names) == sorted(go.fields) and len(names) == len(set(names))


@pytest.mark.parametrize("cls,go", STRUCTS)
def test_support_table_names_every_field(cls, go) -> None:
    struct = {HostConfig: "HostConfig", Config: "Config",
              EndpointSettings: "EndpointSettings"}[cls]
    assert sorted(support.TABLES[struct][1]) == sorted(go.fields)


def test_parse_and_render_round_trip_with_go_zero_values() -> None:
    body = apitypes.check({"Image": "busybox", "Cmd": "true", "Tty": True, "HostConfig": {
        "Memory": 5, "Binds": ["/a:/b"], "RestartPolicy": {"Name": "always"}, "Dns": [],
        "Init": None}, "NetworkingConfig": {"EndpointsConfig": {"n1": {"Aliases": ["x"]}}}},
        apitypes.CONTAINER_CREATE)
    spec = CreateSpec.from_body(body)
    assert spec.config.cmd == ["true"] and spec.config.tty is True
    hc = spec.host_config
    assert (hc.resources.memory, hc.binds, hc.restart_policy.name) == (5, ["/a:/b"], "always")
    assert hc.dns == [] and hc.init is None and hc.links is None and hc.console_size == [0, 0]
    assert spec.networking.endpoints_config["n1"].aliases == ["x"]
    full = hc.to_api(omit=False)
    assert list(full)[:3] == ["Binds", "ContainerIDFile", "LogConfig"]
    assert full["Memory"] == 5 and "Resources" not in full  # embedded, as Go
    assert HostConfig.from_api(full) == hc
    shown = hc.to_api()  # omitempty fields left out when empty
    assert "Mounts" not in shown and "Init" not in shown and "Runtime" not in shown
    assert "Healthcheck" not in spec.config.to_api() and "Env" in spec.config.to_api()


def test_render_keeps_nil_apart_from_empty() -> None:
    assert render(parse(HostConfig, {"Dns": []}))["Dns"] == []
    assert render(parse(HostConfig, {}))["Dns"] is None


def test_defaults_as_dockerd_stores_them() -> None:
    hc = HostConfig.from_api({"MemorySwappiness": -1, "PidsLimit": 0})
    create.apply_defaults(hc)
    shown = hc.to_api()
    assert shown["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert (shown["Runtime"], shown["ShmSize"], shown["IpcMode"], shown["CgroupnsMode"]) == \
        ("runc", 67108864, "private", "host")
    assert (shown["MemorySwappiness"], shown["PidsLimit"], shown["OomKillDisable"]) == \
        (None, None, False)
    assert shown["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert shown["ConsoleSize"] == [0, 0] and shown["NetworkMode"] == ""


@pytest.mark.parametrize("given,swap", [({"Memory": 10 << 20}, 20 << 20),
                                        ({"Memory": 10 << 20, "MemorySwap": -1}, -1),
                                        ({"Memory": 10 << 20, "MemorySwap": 30 << 20}, 30 << 20),
                                        ({}, 0)])
def test_swap_defaults_to_twice_the_memory_as_dockerd(given, swap) -> None:
    hc = HostConfig.from_api(given)
    create.apply_defaults(hc)
    assert hc.resources.memory_swap == swap


@pytest.mark.parametrize("host_config,message", [
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"Runtime": "foo"}, "Unknown runtime specified foo"),
    ({"CgroupnsMode": "bogus"}, "invalid cgroup namespace mode: bogus"),
    ({"PortBindings": {"80/tcp": [{"HostPort": "abc"}]}}, 'invalid port specification: "abc"'),
    ({"PortBindings": {"80/tcp": [{"HostPort": "90-80"}]}}, 'invalid port specification: "90-80"'),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
     "can't create 'AutoRemove' container with restart policy"),
])
def test_validate_with_dockerd_texts(host_config, message) -> None:
    with pytest.raises(BadRequest) as err:
        create.validate(Config(), HostConfig.from_api(host_config), FACTS)
    assert err.value.message == message


def test_host_uts_mode_takes_no_hostname() -> None:
    with pytest.raises(BadRequest) as err:
        create.validate(Config(hostname="x"), HostConfig(uts_mode="host"), FACTS)
    assert err.value.message == "conflicting options: hostname and the UTS mode"
    create.validate(Config(), HostConfig(uts_mode="host"), FACTS)
    create.validate(Config(hostname="x"), HostConfig(), FACTS)


def test_host_uts_mode_has_no_uts_namespace_nor_hostname() -> None:
    spec = oci.compile_spec(Config(hostname="abc"), HostConfig(uts_mode="host"), oci.Parts(
        rootfs="/r", args=["true"], env=[], cwd="/", uid=0, gid=0, additional_gids=[],
        netns_path="/run/n", mounts=[], cgroups_path="/tether/x"))
    assert spec["hostname"] == ""
    assert "uts" not in [ns["type"] for ns in spec["linux"]["namespaces"]]


@pytest.mark.parametrize("kind,config,message", [
    ("asdf", None, 'error looking up logging plugin asdf: plugin "asdf" not found'),
    ("", {"testing": "v"}, "unknown log opt 'testing' for json-file log driver"),
    ("local", {"testing": "v"}, "unknown log opt 'testing' for log driver local"),
    ("", {"mode": "foo"}, "logger: logging mode not supported: foo"),
])
def test_log_config_checked_with_dockerd_texts(kind, config, message) -> None:
    with pytest.raises(BadRequest) as err:
        create.log_config(kind, config, {"Type": "json-file", "Config": {}})
    assert err.value.message == message


def test_log_config_takes_the_daemons_default() -> None:
    default = {"Type": "local", "Config": {"max-size": "1m"}}
    assert create.log_config("", None, default) == ("local", {"max-size": "1m"})
    assert create.log_config("json-file", {}, default) == ("json-file", {})


@pytest.mark.parametrize("struct,body,named", [
    ("HostConfig", {"DeviceRequests": [{"Count": 1}]}, "HostConfig.DeviceRequests"),
    ("HostConfig", {"CpuCount": 1}, "HostConfig.CpuCount"),
    ("HostConfig", {"IpcMode": "bogus"}, "HostConfig.IpcMode"),
    ("HostConfig", {"UTSMode": "container:x"}, "HostConfig.UTSMode"),
    ("HostConfig", {"LogConfig": {"Type": "syslog"}}, "HostConfig.LogConfig.Type"),
    ("HostConfig", {"LogConfig": {"Config": {"compress": "true"}}},
     "HostConfig.LogConfig.Config.compress"),
    ("HostConfig", {"LogConfig": {"Type": "local", "Config": {"mode": "non-blocking"}}},
     "HostConfig.LogConfig.Config.mode"),
    ("EndpointSettings", {"DriverOpts": {"com.docker-py.setting": "on", "x": "1"}},
     "EndpointSettings.DriverOpts.com.docker-py.setting"),
])
def test_unapplied_fields_are_refused_by_name(struct, body, named) -> None:
    config, host_config, endpoints = Config(), HostConfig(), None
    if struct == "HostConfig":
        host_config = HostConfig.from_api(body)
    elif struct == "Config":
        config = Config.from_api(body)
    else:
        endpoints = {"n1": parse(EndpointSettings, body)}
    with pytest.raises(BadRequest) as err:
        support.refusals(config, host_config, endpoints)
    assert err.value.message == f"tether does not support {named} yet"


def test_what_the_docker_cli_sends_by_default_passes() -> None:
    host_config = HostConfig.from_api({
        "LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default", "ConsoleSize": [0, 0],
        "RestartPolicy": {"Name": "no"}, "MemorySwappiness": -1, "PidsLimit": 0, "Dns": [],
        "OomKillDisable": False, "ShmSize": 67108864, "Runtime": "runc", "IpcMode": "private",
        "Ulimits": [], "Devices": []})
    support.refusals(Config(), host_config, {"default": EndpointSettings()})
    support.refusals(Config(), HostConfig.from_api({"LogConfig": {"Config": {"max-file": "3"}}}))


def test_an_empty_list_counts_as_unset() -> None:
    hc = HostConfig.from_api({"Ulimits": []})
    field = next(f for path, f in walk(HostConfig) if path == "Ulimits")
    assert is_default(hc.resources, field)


def _compiled(config: Config, host_config: HostConfig, netns: str | None = "/run/n") -> dict:
    return oci.compile_spec(config, host_config, oci.Parts(
        rootfs="/r", args=["sh"], env=[], cwd="/", uid=0, gid=0, additional_gids=[],
        netns_path=netns, mounts=[], cgroups_path="/tether/x"))


def test_compiler_host_network_shares_the_daemons_namespace() -> None:
    spec = _compiled(Config(), HostConfig(network_mode="host"))
    assert "network" not in [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert not any(k.startswith("net.") for k in spec["linux"]["sysctl"])
    bridged = _compiled(Config(), HostConfig(network_mode="default"))
    assert {"type": "network", "path": "/run/n"} in bridged["linux"]["namespaces"]


def test_compiler_domainname_and_console_size() -> None:
    spec = _compiled(Config(domainname="example.org", tty=True),
                     HostConfig(console_size=[30, 100]))
    assert spec["linux"]["sysctl"]["kernel.domainname"] == "example.org"
    assert spec["process"]["consoleSize"] == {"height": 30, "width": 100}
    assert "consoleSize" not in _compiled(Config(), HostConfig(console_size=[30, 100]))["process"]


def test_compiler_limits_and_cgroup_parent() -> None:
    host_config = HostConfig.from_api({"Memory": 64 << 20, "MemorySwap": 128 << 20,
                                       "PidsLimit": 20, "NanoCpus": 500_000_000,
                                       "CgroupParent": "/walk"})
    linux = _compiled(Config(), host_config)["linux"]
    assert linux["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert linux["resources"]["pids"] == {"limit": 20}
    assert linux["resources"]["cpu"] == {"period": 100_000, "quota": 50_000}
    assert linux["resources"]["devices"] == oci.device_rules()
    assert linux["cgroupsPath"] == "/walk/x"
    plain = _compiled(Config(), HostConfig())["linux"]
    assert plain["cgroupsPath"] == "/tether/x" and set(plain["resources"]) == {"devices"}


def test_compiler_missing_block_device_is_dockerds_error() -> None:
    host_config = HostConfig.from_api({"BlkioDeviceReadBps": [{"Path": "/dev/nope", "Rate": 1}]})
    with pytest.raises(BadRequest) as err:
        _compiled(Config(), host_config)
    assert "/dev/nope" in err.value.message


def test_check_resources_defaults_and_discards_typed() -> None:
    host_config = HostConfig.from_api({"Memory": 64 << 20, "KernelMemory": 64 << 20,
                                       "CpuPercent": 50})
    warnings = create.check_resources(host_config, FACTS)
    res = host_config.resources
    assert (res.memory, res.kernel_memory, res.cpu_percent) == (64 << 20, 0, 0)
    assert warnings == [
        "Specifying a kernel memory limit is deprecated and will be removed in a future release.",
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not "
        "mounted. Limitation discarded.",
        "linux does not support CPU percent. Percent discarded."]


def test_check_resources_refuses_with_dockerds_create_texts() -> None:
    with pytest.raises(BadRequest) as err:
        create.check_resources(HostConfig.from_api({"Memory": 1 << 20}), FACTS)
    assert err.value.message == "Minimum memory limit allowed is 6MB"


@pytest.mark.parametrize("body,text", [
    ({"IOMaximumIOps": 10, "IOMaximumBandwidth": 10},
     "Invalid QoS settings: linux does not support configuration of maximum bandwidth"),
    ({"IOMaximumIOps": 10}, "Invalid QoS settings: linux does not support configuration of "
                            "maximum IOPs"),
    ({"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 5000},
     "cpu real-time runtime cannot be higher than cpu real-time period"),
])
def test_validate_refuses_what_dockerd_refuses_as_it_decodes(body, text) -> None:
    """dockerd 20.10 answers these with a 500 (its decoder's errors carry no kind), and before
    its other checks: a bad working directory is not reached."""
    with pytest.raises(ApiError) as err:
        create.validate(Config(working_dir="relative"), HostConfig.from_api(body), FACTS)
    assert (err.value.status, err.value.message) == (500, text)
