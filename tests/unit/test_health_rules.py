"""tether.rules.health: dockerd's health-check settings, checks and state machine."""
from __future__ import annotations

import pytest

from tether.engine.records import Container, State
from tether.rules import health
from tether.rules.errors import BadRequest

S = 10**9


@pytest.mark.parametrize("config, text", [
    ({"Interval": -5}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Interval": 999_999}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"StartPeriod": 100}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    # dockerd's order: Interval, Timeout, Retries, StartPeriod
    ({"StartPeriod": 1, "Retries": -1, "Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
])
def test_validate_refuses_with_dockerds_texts(config: dict, text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        health.validate(config)
    assert caught.value.message == text and caught.value.status == 400


@pytest.mark.parametrize("config", [None, {}, {"Interval": 0, "Retries": 0}, {"Interval": 10**6},
                                    {"Test": ["BOGUS"]}])
def test_validate_accepts(config: dict | None) -> None:
    health.validate(config)


def test_merge_takes_the_images_fields_left_zero() -> None:
    image = {"Test": ["CMD", "true"], "Interval": 5 * S, "Retries": 2}
    assert health.merge(None, image) == image
    assert health.merge({"Timeout": 3 * S}, image) == {"Test": ["CMD", "true"], "Interval": 5 * S,
                                                      "Retries": 2, "Timeout": 3 * S}
    assert health.merge({"Test": ["NONE"]}, image)["Test"] == ["NONE"]
    assert health.merge(None, None) is None


def test_settings_defaults_shell_and_none() -> None:
    probe = health.settings({"Healthcheck": {"Test": ["CMD-SHELL", "exit 0"]}})
    assert probe == health.Settings(["/bin/sh", "-c", "exit 0"], 30 * S, 30 * S, 0, 3)
    assert health.settings({"Shell": ["/bin/bash", "-ec"],
                            "Healthcheck": {"Test": ["CMD-SHELL", "x"], "Retries": 1}}) == \
        health.Settings(["/bin/bash", "-ec", "x"], 30 * S, 30 * S, 0, 1)
    assert health.settings({"Healthcheck": {"Test": ["CMD", "a", "b"], "Interval": S}}).command == ["a", "b"]
    for test in (["NONE"], [], ["BOGUS", "x"], ["CMD"]):
        assert health.settings({"Healthcheck": {"Test": test}}) is None
    assert health.settings({}) is None


def _result(code: int) -> dict:
    return {"Start": "s", "End": "e", "ExitCode": code, "Output": ""}


def test_retries_then_unhealthy_and_one_success_heals() -> None:
    probe = health.Settings(["true"], S, S, 0, 2)
    h = health.Health()
    assert not health.record(h, _result(1), probe, 5 * S)
    assert (h.status, h.failing_streak) == ("starting", 1)
    assert health.record(h, _result(1), probe, 6 * S)
    assert (h.status, h.failing_streak) == ("unhealthy", 2)
    assert health.record(h, _result(0), probe, 7 * S)
    assert (h.status, h.failing_streak) == ("healthy", 0)
    assert not health.record(h, _result(0), probe, 8 * S)


def test_start_period_failures_do_not_count_until_healthy_once() -> None:
    probe = health.Settings(["true"], S, S, 10 * S, 1)
    h = health.Health()
    health.record(h, _result(1), probe, 3 * S)
    assert (h.status, h.failing_streak) == ("starting", 0)
    health.record(h, _result(1), probe, 11 * S)  # past the start period: it counts
    assert (h.status, h.failing_streak) == ("unhealthy", 1)
    h = health.Health()
    health.record(h, _result(0), probe, 2 * S)
    health.record(h, _result(1), probe, 3 * S)  # healthy once: the start period is over
    assert (h.status, h.failing_streak) == ("unhealthy", 1)


def test_log_keeps_the_last_five() -> None:
    probe = health.Settings(["true"], S, S, 0, 3)
    h = health.Health()
    for code in range(7):
        health.record(h, _result(code), probe, S)
    assert [r["ExitCode"] for r in h.log] == [2, 3, 4, 5, 6]


def test_output_cut_at_4096_bytes() -> None:
    assert health.output_text(b"a" * 4096) == "a" * 4096
    assert health.output_text(b"a" * 5000) == "a" * 4096 + "..."
    assert health.output_text(b"\xff ok") == "\ufffd ok"


def test_start_and_stop_reset_the_status() -> None:
    config = {"Healthcheck": {"Test": ["CMD", "true"]}}
    h = health.at_start(config, None)
    assert h == health.Health("starting", 0, [])
    h.status, h.failing_streak, h.log = "unhealthy", 4, [_result(1)]
    h = health.at_start(config, h)
    assert (h.status, h.failing_streak, len(h.log)) == ("starting", 0, 1)
    assert health.at_stop(h).status == "unhealthy" and h.log
    assert health.at_start({}, None) is None and health.at_stop(None) is None


def test_filter_values_and_error() -> None:
    assert health.filter_value(None) == "none"
    assert health.filter_value(health.Health("healthy")) == "healthy"
    health.check_filter(["starting", "healthy", "unhealthy", "none"])
    with pytest.raises(BadRequest, match="^Unrecognised filter value for health: bad$"):
        health.check_filter(["healthy", "bad"])


def test_state_views_and_record_round_trip() -> None:
    state = State(status="running", started_at="2026-01-01T00:00:00.000000000Z",
                  health=health.Health("starting"))
    now = 1767225603.0  # three seconds later
    assert state.status_text(now) == "Up 3 seconds (health: starting)"
    state.health.status = "healthy"
    assert state.status_text(now) == "Up 3 seconds (healthy)"
    assert state.view()["Health"] == {"Status": "healthy", "FailingStreak": 0, "Log": []}
    assert "Health" not in State().view()
    c = Container(id="a" * 64, name="/x", created="", image_id="", config={}, host_config={},
                  path="sh", args=[], state=state)
    back = Container.from_json(c.to_json())
    assert back.state.health == state.health
    state.status = "exited"
    assert "healthy" not in state.status_text(now)
