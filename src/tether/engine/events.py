"""The daemon's event bus: what `docker events` shows, kept in memory.

A bounded history answers `since` (dockerd also keeps only its last events in memory), and every
live subscriber gets its own queue so that a slow client cannot hold back the services that
publish: publishing never blocks and never awaits.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from tether.rules.filters import label_matches

HISTORY = 1000
SUBSCRIBER_BACKLOG = 10000


def event_json(type_: str, action: str, actor_id: str, attributes: dict[str, str],
               time_ns: int) -> dict[str, Any]:
    """Docker's event message, with the legacy `status`/`id`/`from` keys of container events."""
    message: dict[str, Any] = {}
    if type_ == "container":
        message = {"status": action, "id": actor_id, "from": attributes.get("image", "")}
    message.update({"Type": type_, "Action": action,
                    "Actor": {"ID": actor_id, "Attributes": dict(sorted(attributes.items()))},
                    "scope": "local", "time": time_ns // 1_000_000_000, "timeNano": time_ns})
    return message


class EventBus:
    """Publish events; read the recent ones; follow new ones."""

    def __init__(self, history: int = HISTORY) -> None:
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue] = set()
        self._last_ns = 0

    def _now_ns(self) -> int:
        """Strictly increasing, so `since`/`until` cut the stream where the client expects."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    def publish(self, type_: str, action: str, actor_id: str,
                attributes: dict[str, str]) -> dict[str, Any]:
        message = event_json(type_, action, actor_id, attributes, self._now_ns())
        self._history.append(message)
        for queue in self._subscribers:
            if queue.qsize() < SUBSCRIBER_BACKLOG:  # a stuck client loses events, not memory
                queue.put_nowait(message)
        return message

    def history(self, since_ns: int | None, until_ns: int | None) -> list[dict[str, Any]]:
        return [m for m in self._history
                if (since_ns is None or m["timeNano"] >= since_ns)
                and (until_ns is None or m["timeNano"] <= until_ns)]

    def subscribe(self) -> asyncio.Queue:
        """A queue of the events published from now on; pair with `unsubscribe`."""
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)


def matches(message: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """dockerd's event filters: every key given must match one of its values.

    Keys tether has no events for (network, volume, daemon...) and unknown keys are ignored:
    Docker 20.10 refuses no key either (`--filter colour=red` lists everything)."""
    attributes = message["Actor"]["Attributes"]
    action = message["Action"]
    checks = _checks(message, attributes, action)
    for key, values in filters.items():
        check = checks.get(key)
        if check is not None and values and not any(check(v) for v in values):
            return False
    return True


def _checks(message: dict[str, Any], attributes: dict[str, str],
            action: str) -> dict[str, Any]:
    return {
        "type": lambda v: message["Type"] == v,
        # `exec_start: sh -c ...` matches `exec_start`, as in dockerd
        "event": lambda v: action == v or action.split(":", 1)[0] == v,
        "container": lambda v: message["Type"] == "container" and (
            message["Actor"]["ID"].startswith(v) or attributes.get("name") == v),
        "image": lambda v: attributes.get("image") == v or message["Actor"]["ID"] == v,
        "label": lambda v: label_matches(attributes, v),
    }


def parse_event_time(value: str | None) -> int | None:
    """`since`/`until` as nanoseconds: unix seconds with an optional fraction, as the CLI sends."""
    if value in (None, ""):
        return None
    seconds, _, fraction = value.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"invalid time value: {value}")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)
