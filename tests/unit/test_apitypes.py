"""tether.rules.apitypes: request bodies checked as Go's encoding/json decodes them. The expected texts
were answered by Docker 20.10 (the reference engine) for the same bodies."""
from __future__ import annotations

import pytest

from tether.rules import apitypes, gojson
from tether.rules.apitypes import (CONTAINER_CREATE, EXEC_CONFIG, NETWORK_CONNECT, NETWORK_CREATE,
                             NETWORK_DISCONNECT, UPDATE_CONFIG, VOLUME_CREATE, GoTypeError)

FIELD = "json: cannot unmarshal {} into Go struct field {} of type {}"
VALUE = "json: cannot unmarshal {} into Go value of type {}"


def refused(text: str, go_type: apitypes.GoType) -> str:
    with pytest.raises(GoTypeError) as info:
        apitypes.check(gojson.loads(text), go_type)
    return str(info.value)


@pytest.mark.parametrize(("body", "message"), [
    ('"x"', VALUE.format("string", "runconfig.ContainerConfigWrapper")),
    ('[]', VALUE.format("array", "runconfig.ContainerConfigWrapper")),
    ('5', VALUE.format("number", "runconfig.ContainerConfigWrapper")),
    ('true', VALUE.format("bool", "runconfig.ContainerConfigWrapper")),
    ('{"Env":"A=1"}', FIELD.format("string", "ContainerConfigWrapper.Env", "[]string")),
    ('{"Tty":"yes"}', FIELD.format("string", "ContainerConfigWrapper.Tty", "bool")),
    ('{"StopTimeout":"5"}', FIELD.format("string", "ContainerConfigWrapper.StopTimeout", "int")),
    ('{"Cmd":5}', FIELD.format("number", "ContainerConfigWrapper.Cmd", "string")),
    ('{"Cmd":[5]}', FIELD.format("array", "ContainerConfigWrapper.Cmd", "string")),
    ('{"Entrypoint":{"a":1}}', FIELD.format("object", "ContainerConfigWrapper.Entrypoint", "string")),
    ('{"ExposedPorts":{"80/tcp":5}}',
     FIELD.format("number", "ContainerConfigWrapper.ExposedPorts", "struct {}")),
    ('{"Volumes":{"a":1}}', FIELD.format("number", "ContainerConfigWrapper.Volumes", "struct {}")),
    ('{"Healthcheck":{"Interval":"5s"}}',
     FIELD.format("string", "HealthConfig.Healthcheck.Interval", "time.Duration")),
    ('{"Healthcheck":{"Interval":1.5}}',
     FIELD.format("number 1.5", "HealthConfig.Healthcheck.Interval", "time.Duration")),
    ('{"Healthcheck":{"Test":"x"}}', FIELD.format("string", "HealthConfig.Healthcheck.Test", "[]string")),
    ('{"HostConfig":"x"}',
     FIELD.format("string", "ContainerConfigWrapper.HostConfig", "container.HostConfig")),
    ('{"HostConfig":{"Memory":"lots"}}', FIELD.format("string", "HostConfig.HostConfig.Memory", "int64")),
    ('{"HostConfig":{"Memory":1.5}}', FIELD.format("number 1.5", "HostConfig.HostConfig.Memory", "int64")),
    ('{"HostConfig":{"Memory":1e30}}', FIELD.format("number 1e30", "HostConfig.HostConfig.Memory", "int64")),
    ('{"HostConfig":{"Memory":-1e0}}', FIELD.format("number -1e0", "HostConfig.HostConfig.Memory", "int64")),
    ('{"HostConfig":{"Memory":99999999999999999999}}',
     FIELD.format("number 99999999999999999999", "HostConfig.HostConfig.Memory", "int64")),
    ('{"HostConfig":{"CpuShares":1e3}}', FIELD.format("number 1e3", "HostConfig.HostConfig.CpuShares", "int64")),
    ('{"HostConfig":{"BlkioWeight":70000}}',
     FIELD.format("number 70000", "HostConfig.HostConfig.BlkioWeight", "uint16")),
    ('{"HostConfig":{"BlkioWeight":-1}}', FIELD.format("number -1", "HostConfig.HostConfig.BlkioWeight", "uint16")),
    ('{"HostConfig":{"PortBindings":["x"]}}',
     FIELD.format("array", "HostConfig.HostConfig.PortBindings", "nat.PortMap")),
    ('{"HostConfig":{"PortBindings":{"80/tcp":{"HostPort":"1"}}}}',
     FIELD.format("object", "HostConfig.HostConfig.PortBindings", "[]nat.PortBinding")),
    ('{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":1}]}}}',
     FIELD.format("number", "PortBinding.HostConfig.PortBindings.HostPort", "string")),
    ('{"HostConfig":{"RestartPolicy":{"Name":5}}}',
     FIELD.format("number", "RestartPolicy.HostConfig.RestartPolicy.Name", "string")),
    ('{"HostConfig":{"RestartPolicy":{"MaximumRetryCount":"1"}}}',
     FIELD.format("string", "RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount", "int")),
    ('{"HostConfig":{"LogConfig":{"Config":{"a":1}}}}',
     FIELD.format("number", "LogConfig.HostConfig.LogConfig.Config", "string")),
    ('{"HostConfig":{"ConsoleSize":"x"}}', FIELD.format("string", "HostConfig.HostConfig.ConsoleSize", "[2]uint")),
    ('{"HostConfig":{"ConsoleSize":[-1,2]}}', FIELD.format("number -1", "HostConfig.HostConfig.ConsoleSize", "uint")),
    ('{"HostConfig":{"Ulimits":[{"Name":"nofile","Soft":"1"}]}}',
     FIELD.format("string", "Ulimit.HostConfig.Ulimits.Soft", "int64")),
    ('{"HostConfig":{"NetworkMode":5}}',
     FIELD.format("number", "HostConfig.HostConfig.NetworkMode", "container.NetworkMode")),
    ('{"HostConfig":{"OomKillDisable":"x"}}', FIELD.format("string", "HostConfig.HostConfig.OomKillDisable", "bool")),
    ('{"HostConfig":{"Mounts":[{"Type":1}]}}', FIELD.format("number", "Mount.HostConfig.Mounts.Type", "mount.Type")),
    ('{"HostConfig":{"Mounts":[{"TmpfsOptions":{"Mode":"x"}}]}}',
     FIELD.format("string", "TmpfsOptions.HostConfig.Mounts.TmpfsOptions.Mode", "fs.FileMode")),
    ('{"HostConfig":{"Mounts":[{"VolumeOptions":{"DriverConfig":{"Options":{"a":1}}}}]}}',
     FIELD.format("number", "Driver.HostConfig.Mounts.VolumeOptions.DriverConfig.Options", "string")),
    ('{"HostConfig":{"DeviceRequests":[{"Capabilities":[[1]]}]}}',
     FIELD.format("number", "DeviceRequest.HostConfig.DeviceRequests.Capabilities", "string")),
    ('{"HostConfig":{"BlkioWeightDevice":[{"Weight":"x"}]}}',
     FIELD.format("string", "WeightDevice.HostConfig.BlkioWeightDevice.Weight", "uint16")),
    ('{"HostConfig":{"Tmpfs":{"a":1}}}', FIELD.format("number", "HostConfig.HostConfig.Tmpfs", "string")),
    ('{"NetworkingConfig":"x"}',
     FIELD.format("string", "ContainerConfigWrapper.NetworkingConfig", "network.NetworkingConfig")),
    ('{"NetworkingConfig":{"EndpointsConfig":"x"}}',
     FIELD.format("string", "NetworkingConfig.NetworkingConfig.EndpointsConfig",
                  "map[string]*network.EndpointSettings")),
    ('{"NetworkingConfig":{"EndpointsConfig":{"a":"x"}}}',
     FIELD.format("string", "NetworkingConfig.NetworkingConfig.EndpointsConfig", "network.EndpointSettings")),
    ('{"NetworkingConfig":{"EndpointsConfig":{"a":{"IPAMConfig":{"IPv4Address":1}}}}}',
     FIELD.format("number", "EndpointIPAMConfig.NetworkingConfig.EndpointsConfig.IPAMConfig.IPv4Address",
                  "string")),
    ('{"NetworkingConfig":{"EndpointsConfig":{"a":{"Links":"x"}}}}',
     FIELD.format("string", "EndpointSettings.NetworkingConfig.EndpointsConfig.Links", "[]string")),
])
def test_create_body_type_errors_match_docker(body: str, message: str) -> None:
    assert refused(body, CONTAINER_CREATE) == message


@pytest.mark.parametrize(("body", "go_type", "message"), [
    ('"x"', UPDATE_CONFIG, VALUE.format("string", "container.UpdateConfig")),
    ('{"Memory":"x"}', UPDATE_CONFIG, FIELD.format("string", "UpdateConfig.Memory", "int64")),
    ('{"RestartPolicy":"x"}', UPDATE_CONFIG,
     FIELD.format("string", "UpdateConfig.RestartPolicy", "container.RestartPolicy")),
    ('{"CpuShares":1.5}', UPDATE_CONFIG, FIELD.format("number 1.5", "UpdateConfig.CpuShares", "int64")),
    ('{"Ulimits":"x"}', UPDATE_CONFIG, FIELD.format("string", "UpdateConfig.Ulimits", "[]*units.Ulimit")),
    ('"x"', NETWORK_CREATE, VALUE.format("string", "types.NetworkCreateRequest")),
    ('{"Name":5}', NETWORK_CREATE, FIELD.format("number", "NetworkCreateRequest.Name", "string")),
    ('{"IPAM":"x"}', NETWORK_CREATE, FIELD.format("string", "NetworkCreateRequest.IPAM", "network.IPAM")),
    ('{"IPAM":{"Config":[{"Subnet":5}]}}', NETWORK_CREATE,
     FIELD.format("number", "IPAMConfig.IPAM.Config.Subnet", "string")),
    ('{"IPAM":{"Config":[{"AuxiliaryAddresses":{"a":5}}]}}', NETWORK_CREATE,
     FIELD.format("number", "IPAMConfig.IPAM.Config.AuxiliaryAddresses", "string")),
    ('{"ConfigFrom":{"Network":1}}', NETWORK_CREATE,
     FIELD.format("number", "ConfigReference.ConfigFrom.Network", "string")),
    ('{"EnableIPv6":"x"}', NETWORK_CREATE, FIELD.format("string", "NetworkCreateRequest.EnableIPv6", "bool")),
    ('"x"', NETWORK_CONNECT, VALUE.format("string", "types.NetworkConnect")),
    ('{"Container":5}', NETWORK_CONNECT, FIELD.format("number", "NetworkConnect.Container", "string")),
    ('{"EndpointConfig":"x"}', NETWORK_CONNECT,
     FIELD.format("string", "NetworkConnect.EndpointConfig", "network.EndpointSettings")),
    ('{"EndpointConfig":{"Aliases":"x"}}', NETWORK_CONNECT,
     FIELD.format("string", "EndpointSettings.EndpointConfig.Aliases", "[]string")),
    ('{"Force":"x"}', NETWORK_DISCONNECT, FIELD.format("string", "NetworkDisconnect.Force", "bool")),
    ('"x"', EXEC_CONFIG, VALUE.format("string", "types.ExecConfig")),
    ('{"Cmd":"x"}', EXEC_CONFIG, FIELD.format("string", "ExecConfig.Cmd", "[]string")),
    ('{"Privileged":1}', EXEC_CONFIG, FIELD.format("number", "ExecConfig.Privileged", "bool")),
    ('"x"', apitypes.EXEC_START_CHECK, VALUE.format("string", "types.ExecStartCheck")),
    ('{"Detach":"x"}', apitypes.EXEC_START_CHECK, FIELD.format("string", "ExecStartCheck.Detach", "bool")),
    ('{"Tty":1}', apitypes.EXEC_START_CHECK, FIELD.format("number", "ExecStartCheck.Tty", "bool")),
    ('[]', VOLUME_CREATE, VALUE.format("array", "volume.CreateOptions")),
    ('{"Driver":true}', VOLUME_CREATE, FIELD.format("bool", "CreateOptions.Driver", "string")),
    ('{"Labels":["a"]}', VOLUME_CREATE, FIELD.format("array", "CreateOptions.Labels", "map[string]string")),
    ('{"ClusterVolumeSpec":"x"}', VOLUME_CREATE,
     FIELD.format("string", "CreateOptions.ClusterVolumeSpec", "volume.ClusterVolumeSpec")),
    ('{"Name":5}', VOLUME_CREATE, FIELD.format("number", "CreateOptions.Name", "string")),
    ('{"Labels":{"a":5}}', VOLUME_CREATE, FIELD.format("number", "CreateOptions.Labels", "string")),
])
def test_other_bodies_type_errors(body: str, go_type: apitypes.GoType, message: str) -> None:
    assert refused(body, go_type) == message


def test_first_error_in_document_order_wins() -> None:
    assert refused('{"Tty":1,"Env":"x"}', CONTAINER_CREATE).endswith("Tty of type bool")
    assert refused('{"Env":"x","Tty":1}', CONTAINER_CREATE).endswith("Env of type []string")


def test_null_is_accepted_anywhere() -> None:
    body = {key: None for key in CONTAINER_CREATE.fields}
    assert apitypes.check(body, CONTAINER_CREATE) == body
    assert apitypes.check(None, CONTAINER_CREATE) is None


def test_nulls_inside_slices_maps_and_arrays_are_zero_values() -> None:
    body = apitypes.check(gojson.loads(
        '{"Env":[null,"A=1"],"Labels":{"a":null},"HostConfig":{"ConsoleSize":[null],'
        '"PortBindings":{"80/tcp":[null]},"Ulimits":[null],"Mounts":[null]}}'), CONTAINER_CREATE)
    assert body["Env"] == ["", "A=1"]
    assert body["Labels"] == {"a": ""}
    host = body["HostConfig"]
    assert host["ConsoleSize"] == [0, 0]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert host["Ulimits"] == [None]  # a slice of pointers holds nil
    assert host["Mounts"] == [{"Type": "", "Source": "", "Target": "", "ReadOnly": False,
                               "Consistency": "", "BindOptions": None, "VolumeOptions": None,
                               "TmpfsOptions": None, "ClusterOptions": None}]


def test_decoded_value_is_what_go_holds() -> None:
    """Case-insensitive keys take the declared spelling (the last one wins), unknown fields go,
    a string Cmd is a one-element StrSlice, arrays take their fixed length."""
    body = apitypes.check(gojson.loads(
        '{"image":"busybox","Cmd":"echo hi","cmd":"true","Bogus":1,'
        '"hostconfig":{"consolesize":[1,2,3],"Unknown":{"x":1},"CAPADD":"NET_ADMIN"}}'),
        CONTAINER_CREATE)
    assert body == {"Image": "busybox", "Cmd": ["true"],
                    "HostConfig": {"ConsoleSize": [1, 2], "CapAdd": ["NET_ADMIN"]}}


@pytest.mark.parametrize(("text", "ok"), [
    ("9223372036854775807", True), ("-9223372036854775808", True), ("9223372036854775808", False),
    ("-9223372036854775809", False), ("1.0", False), ("-0", True), ("0.5e1", False)])
def test_int64_range_and_literal_form(text: str, ok: bool) -> None:
    body = '{"HostConfig":{"Memory":%s}}' % text
    if ok:
        assert apitypes.check(gojson.loads(body), CONTAINER_CREATE)["HostConfig"]["Memory"] == int(text)
    else:
        assert refused(body, CONTAINER_CREATE) == FIELD.format(
            f"number {text}", "HostConfig.HostConfig.Memory", "int64")


@pytest.mark.parametrize(("go_type", "good", "bad"), [
    (apitypes.UINT16, 65535, 65536), (apitypes.UINT64, (1 << 64) - 1, 1 << 64),
    (apitypes.FILE_MODE, (1 << 32) - 1, 1 << 32), (apitypes.INT, -(1 << 63), -(1 << 63) - 1)])
def test_integer_bounds(go_type: apitypes.GoType, good: int, bad: int) -> None:
    assert apitypes.check(good, go_type) == good
    with pytest.raises(GoTypeError, match=f"^json: cannot unmarshal number {bad} into Go value "
                                          f"of type {go_type.name}$"):
        apitypes.check(bad, go_type)


def test_float_kind() -> None:  # gojson.loads keeps the literal Go quotes
    assert apitypes.check(gojson.loads("1e3"), apitypes.Float()) == 1000.0
    with pytest.raises(GoTypeError, match="number 1e400 into Go value of type float64"):
        apitypes.check(gojson.loads("1e400"), apitypes.Float())
    with pytest.raises(GoTypeError, match="string into Go value of type float64"):
        apitypes.check("1", apitypes.Float())


def test_strings_are_not_numbers_nor_bools() -> None:
    assert refused('{"HostConfig":{"Privileged":"true"}}', CONTAINER_CREATE).endswith(
        "Privileged of type bool")
    assert refused('{"HostConfig":{"ShmSize":"64"}}', CONTAINER_CREATE).startswith(
        "json: cannot unmarshal string")
    assert refused('{"HostConfig":{"ShmSize":true}}', CONTAINER_CREATE).startswith(
        "json: cannot unmarshal bool")


def test_every_declared_struct_field_refuses_a_wrong_kind() -> None:
    """Of the five JSON kinds, each field takes one or two (a StrSlice: string and array) and
    refuses the others, naming the field."""
    for name in CONTAINER_CREATE.fields:
        refusals = 0
        for wrong in ('"s"', "1", "true", '[{"a":1}]', '{"a":1}'):
            try:
                apitypes.check({name: gojson.loads(wrong)}, CONTAINER_CREATE)
            except GoTypeError as exc:
                assert f"ContainerConfigWrapper.{name} of type " in str(exc)
                refusals += 1
        assert refusals >= 3, name


def test_an_integer_too_long_for_python_is_out_of_range() -> None:
    digits = "9" * 5000
    assert refused('{"HostConfig":{"Memory":%s}}' % digits, CONTAINER_CREATE) == FIELD.format(
        f"number {digits}", "HostConfig.HostConfig.Memory", "int64")
    assert refused('{"Image":%s}' % digits, CONTAINER_CREATE) == FIELD.format(
        "number", "ContainerConfigWrapper.Image", "string")
