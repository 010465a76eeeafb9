"""The event bus: message shape, history window, subscribers, filters, time parsing."""
from __future__ import annotations

import asyncio

import pytest

from tether.engine.events import EventBus, matches, parse_event_time


def _publish(bus: EventBus, action: str, **attributes: str) -> dict:
    return bus.publish("container", action, "c0ffee" * 4, {"image": "busybox", "name": "web",
                                                           **attributes})


def test_message_has_dockers_keys_and_sorted_attributes() -> None:
    m = _publish(EventBus(), "die", exitCode="1", a="x")
    assert (m["status"], m["id"], m["from"], m["Type"], m["Action"]) == \
        ("die", "c0ffee" * 4, "busybox", "container", "die")
    assert list(m["Actor"]["Attributes"]) == ["a", "exitCode", "image", "name"]
    assert m["scope"] == "local" and m["time"] == m["timeNano"] // 10**9


def test_times_strictly_increase_and_history_is_bounded() -> None:
    bus = EventBus(history=3)
    sent = [_publish(bus, str(i)) for i in range(5)]
    assert all(a["timeNano"] < b["timeNano"] for a, b in zip(sent, sent[1:], strict=False))
    assert [m["Action"] for m in bus.history(None, None)] == ["2", "3", "4"]
    assert [m["Action"] for m in bus.history(sent[3]["timeNano"], None)] == ["3", "4"]
    assert [m["Action"] for m in bus.history(None, sent[2]["timeNano"])] == ["2"]


def test_subscribers_get_events_published_after_subscribing() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        _publish(bus, "before")
        queue = bus.subscribe()
        _publish(bus, "after")
        bus.unsubscribe(queue)
        _publish(bus, "gone")
        return [queue.get_nowait()["Action"] for _ in range(queue.qsize())]
    assert asyncio.run(scenario()) == ["after"]


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, True),
    ({"event": ["exec_start"]}, True),
    ({"event": ["die", "exec_start"]}, True),
    ({"event": ["exec_create"]}, False),
    ({"type": ["image"]}, False),
    ({"container": ["web"]}, True),
    ({"container": ["c0ffee"]}, True),
    ({"container": ["db"]}, False),
    ({"image": ["busybox"]}, True),
    ({"label": ["tier"]}, True),
    ({"label": ["tier=web"]}, True),
    ({"label": ["tier=db"]}, False),
    ({"event": ["exec_start"], "label": ["nope"]}, False),
    ({"colour": ["red"]}, True),  # unknown keys are ignored, as by Docker 20.10
])
def test_filters(filters: dict[str, list[str]], expected: bool) -> None:
    m = _publish(EventBus(), "exec_start: sh -c true", tier="web")
    assert matches(m, filters) is expected


def test_parse_event_time() -> None:
    assert parse_event_time(None) is None and parse_event_time("") is None
    assert parse_event_time("0") == 0
    assert parse_event_time("12.5") == 12_500_000_000
    assert parse_event_time("1795638726.000000001") == 1795638726_000_000_001
    with pytest.raises(ValueError):
        parse_event_time("yesterday")
