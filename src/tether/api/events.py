"""`GET /events`: the recent events from the bus, then live ones, one JSON object a chunk."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

from tether.api.http import Request, Router, StreamResponse
from tether.engine.events import EventBus, matches, parse_event_time
from tether.rules.errors import BadRequest


class EventRoutes:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def register(self, router: Router) -> None:
        router.add("GET", "/events", self.events)

    async def events(self, req: Request) -> StreamResponse:
        """Subscribed before the history is read, so no event falls between the two."""
        filters = req.filters()
        try:
            since, until = parse_event_time(req.q("since")), parse_event_time(req.q("until"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        queue = self.bus.subscribe()
        past = self.bus.history(since, until) if since is not None or until is not None else []

        async def body() -> AsyncIterator[bytes]:
            try:
                for message in past:
                    if matches(message, filters):
                        yield _line(message)
                async for message in _live(queue, until):
                    if matches(message, filters) and (since is None or
                                                      message["timeNano"] >= since):
                        yield _line(message)
            finally:
                self.bus.unsubscribe(queue)
        return StreamResponse(body(), "application/json")


async def _live(queue: asyncio.Queue, until_ns: int | None) -> AsyncIterator[dict[str, Any]]:
    """Events as they come, until `until` (never, without it)."""
    while True:
        if until_ns is None:
            yield await queue.get()
            continue
        left = (until_ns - time.time_ns()) / 1e9
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(queue.get(), left)
        except asyncio.TimeoutError:
            return
        if message["timeNano"] > until_ns:
            return
        yield message


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"
