"""Container record views: status texts and log time conversion."""
from __future__ import annotations

from tether.engine.logs import to_docker_time
from tether.engine.records import SPEC_VERSION, Container, State
from tether.spec.types import Config, HostConfig
from tether.rules.times import now_rfc3339, parse_rfc3339


def test_rfc3339_round_trip():
    text = now_rfc3339()
    assert text.endswith("Z") and len(text) == 30
    assert abs(parse_rfc3339(text) - parse_rfc3339(now_rfc3339())) < 1


def test_status_texts():
    now = parse_rfc3339("2026-01-01T00:10:00.000000000Z")
    up = State(status="running", started_at="2026-01-01T00:08:00.000000000Z")
    assert up.status_text(now) == "Up 2 minutes"
    gone = State(status="exited", exit_code=3, finished_at="2026-01-01T00:09:55.000000000Z")
    assert gone.status_text(now) == "Exited (3) 5 seconds ago"
    assert State().status_text(now) == "Created"


def test_record_round_trip():
    c = Container(id="a" * 64, name="/x", created=now_rfc3339(), image_id="sha256:" + "b" * 64,
                  config=Config(tty=True), host_config=HostConfig(), path="sh", args=["-c", "true"])
    c.state.status = "running"
    again = Container.from_json(c.to_json())
    assert again == c and again.tty


def test_log_times_become_utc_nanoseconds():
    assert to_docker_time("2026-11-25T19:00:00.123456789+01:00")[0] == "2026-11-25T18:00:00.123456789Z"
    text, seconds = to_docker_time("2026-11-25T19:00:00.5Z")
    assert text == "2026-11-25T19:00:00.500000000Z"
    assert seconds == parse_rfc3339("2026-11-25T19:00:00.5Z")


def test_paused_is_kept_apart_from_status():
    """A paused container runs: the record says so, the views say paused (dockerd's State)."""
    c = Container(id="c" * 64, name="/p", created=now_rfc3339(), image_id="sha256:" + "0" * 64,
                  config=Config(), host_config=HostConfig(), path="sleep", args=["9"],
                  state=State(status="running", started_at=now_rfc3339(), paused=True))
    view = c.state.view()
    assert (view["Status"], view["Paused"], view["Running"]) == ("paused", True, True)
    assert c.state.status_text().endswith(" (Paused)") and c.state.running
    assert c.summary({}, [])["State"] == "paused"
    again = Container.from_json(c.to_json())
    assert again.state.paused
    old = c.to_json()
    del old["state"]["paused"]  # a record written before the field existed
    assert Container.from_json(old).state.paused is False


def test_damaged_records_are_refused_not_half_read():
    import pytest

    good = Container(id="a" * 64, name="/x", created=now_rfc3339(), image_id="sha256:" + "b" * 64,
                     config=Config(), host_config=HostConfig(), path="sh", args=[]).to_json()
    damaged = [[], "text", {**good, "state": "running"}, {**good, "name": 5},
               {**good, "config": None}, {**good, "args": "sh"}, {**good, "unknown": 1},
               {**good, "host_config": {"Memory": "64m"}}, {**good, "spec_version": 99},
               {k: v for k, v in good.items() if k != "id"},
               {**good, "state": {**good["state"], "status": ["running"]}}]
    for data in damaged:
        with pytest.raises((ValueError, TypeError)):
            Container.from_json(data)


# A record as tether wrote it before the typed spec: Config merged with the image, HostConfig as
# the docker CLI sent it (no LogConfig: inspect added the default on the fly).
OLD_RECORD = {
    "id": "d" * 64, "name": "/old", "created": "2026-11-01T10:00:00.000000000Z",
    "image_id": "sha256:" + "e" * 64,
    "config": {"Hostname": "dddddddddddd", "Domainname": "", "User": "", "AttachStdin": False,
               "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
               "StdinOnce": False, "Env": ["PATH=/bin"], "Cmd": ["sleep", "9"],
               "Image": "busybox", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
               "ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "b"}},
    "host_config": {"Binds": ["/srv:/srv"], "NetworkMode": "default",
                    "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                    "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                    "AutoRemove": False, "Dns": [], "SecurityOpt": None,
                    "MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": ["/proc/sys"]},
    "path": "sleep", "args": ["9"],
    "state": {"status": "exited", "pid": 0, "exit_code": 0, "error": "",
              "started_at": "2026-11-01T10:00:01.000000000Z",
              "finished_at": "2026-11-01T10:00:10.000000000Z", "oom_killed": False},
    "restart_count": 0, "stopped_by_user": True, "has_been_started": True,
    "network": {}, "networks": {}, "next_ifindex": 0, "link_ips": {}, "started_link_env": [],
    "mounts": [],
}


def test_old_records_are_migrated_to_the_typed_spec():
    c = Container.from_json(OLD_RECORD)
    assert c.config.exposed_ports == {"80/tcp": {}} and c.config.labels == {"a": "b"}
    assert c.config.cmd == ["sleep", "9"] and c.tty is False
    hc = c.host_config
    assert hc.binds == ["/srv:/srv"] and hc.restart_policy.name == "always"
    assert hc.port_bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc.masked_paths == ["/proc/kcore"] and hc.dns == []
    # the defaults dockerd stores, which inspect used to add on the fly
    assert (hc.log_config.type, hc.log_config.config) == ("json-file", {})
    assert (hc.runtime, hc.shm_size, hc.ipc_mode) == ("runc", 67108864, "private")
    again = c.to_json()
    assert again["spec_version"] == SPEC_VERSION
    assert Container.from_json(again) == c
    view = c.inspect({k: "" for k in ("resolv", "hostname", "hosts", "log", "rootfs", "upper",
                                      "work")}, {})
    assert view["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert view["HostConfig"]["NetworkMode"] == "default"
    assert "ExposedPorts" in view["Config"] and "Healthcheck" not in view["Config"]
