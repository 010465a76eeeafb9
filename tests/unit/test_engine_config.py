"""Rules that turn a create request and an image into a container's configuration."""
from __future__ import annotations

import signal

import pytest

from tether.rules.config import (RestartPolicy, command_line, merge_env, merge_image_config,
                                 parse_signal, process_env, validate_create)
from tether.rules.errors import BadRequest


def test_merge_env_replaces_appends_and_deletes():
    assert merge_env(["A=1", "B=2", "C=3"], ["B=x", "D=4", "A"]) == ["B=x", "C=3", "D=4"]


def test_image_env_fills_only_keys_the_user_did_not_set():
    merged = merge_image_config({"Env": ["PATH=/mine", "X=1"]},
                                {"Env": ["PATH=/image", "Y=2"], "Cmd": ["sh"]})
    assert merged["Env"] == ["PATH=/mine", "X=1", "Y=2"]
    assert merged["Cmd"] == ["sh"]


def test_user_entrypoint_drops_the_image_cmd():
    merged = merge_image_config({"Entrypoint": ["/bin/echo"]},
                                {"Entrypoint": ["/x"], "Cmd": ["sh"]})
    assert merged["Entrypoint"] == ["/bin/echo"] and not merged.get("Cmd")


def test_user_cmd_keeps_the_image_entrypoint():
    merged = merge_image_config({"Cmd": ["hello"]}, {"Entrypoint": ["/bin/echo"], "Cmd": ["x"]})
    assert command_line(merged) == ("/bin/echo", ["hello"])


def test_ports_labels_and_workdir_merge():
    merged = merge_image_config({"ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "user"}},
                                {"ExposedPorts": {"443/tcp": {}}, "Labels": {"a": "img", "b": "img"},
                                 "WorkingDir": "/srv", "User": "nobody"})
    assert merged["ExposedPorts"] == {"443/tcp": {}, "80/tcp": {}}
    assert merged["Labels"] == {"a": "user", "b": "img"}
    assert (merged["WorkingDir"], merged["User"]) == ("/srv", "nobody")


def test_no_command_is_an_error():
    with pytest.raises(BadRequest, match="No command specified"):
        command_line({"Cmd": None, "Entrypoint": None})


def test_process_env_order_follows_docker():
    env = process_env(["PATH=/custom", "A=1"], "abc123", tty=True, link_env=["DB_NAME=/x/db"])
    assert env == ["PATH=/custom", "HOSTNAME=abc123", "TERM=xterm", "DB_NAME=/x/db", "A=1"]
    assert process_env(None, "h", tty=False)[1:] == ["HOSTNAME=h"]


@pytest.mark.parametrize("value, expected", [
    ("KILL", signal.SIGKILL), ("SIGTERM", signal.SIGTERM), ("usr1", signal.SIGUSR1),
    ("9", 9), (15, 15), (None, signal.SIGKILL), ("", signal.SIGKILL)])
def test_parse_signal(value, expected):
    assert parse_signal(value) == expected


@pytest.mark.parametrize("value", ["NOPE", "0", "99", "SIG"])
def test_parse_signal_rejects(value):
    with pytest.raises(BadRequest, match="Invalid signal"):
        parse_signal(value)


def test_restart_policy_rules():
    on_failure = RestartPolicy.from_api({"Name": "on-failure", "MaximumRetryCount": 2})
    assert on_failure.should_restart(1, 0, False) and on_failure.should_restart(1, 1, False)
    assert not on_failure.should_restart(1, 2, False)
    assert not on_failure.should_restart(0, 0, False)
    always = RestartPolicy.from_api({"Name": "always"})
    assert always.should_restart(0, 100, False) and not always.should_restart(0, 0, True)
    assert not RestartPolicy.from_api(None).should_restart(1, 0, False)


@pytest.mark.parametrize("body, message", [  # Docker 20.10's texts (the reference engine's)
    ({"Name": "sometimes"}, "invalid restart policy 'sometimes'"),
    ({"Name": "always", "MaximumRetryCount": 3},
     "maximum retry count cannot be used with restart policy 'always'"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, "maximum retry count cannot be negative"),
])
def test_restart_policy_errors(body, message):
    with pytest.raises(BadRequest) as err:
        RestartPolicy.from_api(body)
    assert err.value.message == message


@pytest.mark.parametrize(("config", "host_config", "message"), [
    ({"WorkingDir": "rel"}, {},
     "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ({"StopSignal": "FOO"}, {}, "Invalid signal: FOO"),
    ({"Env": ["A=1", "=x"]}, {}, "invalid environment variable: =x"),
    ({"Env": [""]}, {}, "invalid environment variable: "),
    ({}, {"ExtraHosts": ["bad"]}, 'bad format for add-host: "bad"'),
    ({}, {"ExtraHosts": [":1.2.3.4"]}, 'bad format for add-host: ":1.2.3.4"'),
    ({}, {"ExtraHosts": ["h:notanip"]}, 'invalid IP address in add-host: "notanip"'),
    ({}, {"PortBindings": {"x": []}}, 'invalid port specification: "x"'),
    ({}, {"PortBindings": {"99999/tcp": []}}, 'invalid port specification: "99999"'),
    ({}, {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}},
     'invalid port specification: "99999"'),
    ({}, {"PortBindings": {"80/tcp": [{"HostPort": "1-70000"}]}},
     'invalid port specification: "1-70000"'),
    # dockerd's order: the config before the host config
    ({"WorkingDir": "rel", "Env": ["=x"]}, {"PortBindings": {"x": []}},
     "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ({"Env": ["=x"]}, {"PortBindings": {"x": []}}, "invalid environment variable: =x"),
])
def test_validate_create_refuses_with_dockerd_texts(config, host_config, message):
    with pytest.raises(BadRequest) as info:
        validate_create(config, host_config)
    assert info.value.message == message


def test_validate_create_accepts_what_dockerd_accepts():
    validate_create({"WorkingDir": "/w", "StopSignal": "SIGUSR1", "Env": ["A", "B="]},
                    {"ExtraHosts": ["h:1.2.3.4", "g:::1", "x:host-gateway"],
                     "PortBindings": {"80/tcp": [{"HostPort": "8080"}, {}], "53/udp": None}})
