"""Container record views: status texts and log time conversion."""
from __future__ import annotations

from tether.engine.logs import to_docker_time
from tether.engine.records import Container, State
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
                  config={"Tty": True}, host_config={}, path="sh", args=["-c", "true"])
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
                  config={}, host_config={}, path="sleep", args=["9"],
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
                     config={}, host_config={}, path="sh", args=[]).to_json()
    damaged = [[], "text", {**good, "state": "running"}, {**good, "name": 5},
               {**good, "config": None}, {**good, "args": "sh"}, {**good, "unknown": 1},
               {k: v for k, v in good.items() if k != "id"},
               {**good, "state": {**good["state"], "status": ["running"]}}]
    for data in damaged:
        with pytest.raises((ValueError, TypeError)):
            Container.from_json(data)
