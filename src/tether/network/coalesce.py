"""One run of an idempotent job for all who asked for it meanwhile.

The firewall is rewritten whole from the manager's state (one nft transaction), so when many
containers publish ports at once, each waiting for the one before to finish its own rewrite is
work repeated for nothing: one rewrite started after their changes covers them all. A caller
returns once a run that began after its call has finished (so it includes its change), and a
failed run fails only the caller that ran it; the others try again.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


class Coalesced:
    """Call it after changing the state `job` reads; `job` must read that state before its
    first await (a run covers the calls made before it started)."""

    def __init__(self, job: Callable[[], Awaitable[None]]) -> None:
        self._job = job
        self._lock = asyncio.Lock()
        self._asked = 0   # calls so far
        self._done = 0    # calls covered by the last run that finished

    async def __call__(self) -> None:
        self._asked += 1
        mine = self._asked
        async with self._lock:
            if self._done >= mine:
                return
            covers = self._asked
            await self._job()
            self._done = covers
