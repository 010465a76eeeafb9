"""Coalesced: concurrent callers share one run that starts after their calls."""
from __future__ import annotations

import asyncio

import pytest

from tether.network.coalesce import Coalesced


class Job:
    def __init__(self, fail_first: bool = False) -> None:
        self.state = 0          # what callers change
        self.seen: list[int] = []
        self.fail_first = fail_first

    async def __call__(self) -> None:
        snapshot = self.state   # read before the first await, as the rule asks
        await asyncio.sleep(0.01)
        if self.fail_first and not self.seen:
            self.seen.append(-1)
            raise RuntimeError("nft failed")
        self.seen.append(snapshot)


def test_one_caller_one_run():
    job = Job()
    run = Coalesced(job)
    asyncio.run(run())
    assert job.seen == [0]


def test_callers_meanwhile_share_the_next_run():
    async def main() -> tuple[Job, list[int]]:
        job = Job()
        run = Coalesced(job)
        returned: list[int] = []

        async def change_then_apply(i: int) -> None:
            job.state = i
            await run()
            returned.append(job.seen[-1])  # the run it waited for had its change
            assert job.seen[-1] >= i

        await asyncio.gather(*(change_then_apply(i) for i in range(1, 21)))
        return job, returned
    job, returned = asyncio.run(main())
    assert job.seen == [1, 20]   # the first caller's run, then one for the nineteen behind it
    assert sorted(returned) == [1] + [20] * 19


def test_a_run_already_going_does_not_cover_a_later_call():
    async def main() -> Job:
        job = Job()
        run = Coalesced(job)
        first = asyncio.create_task(run())
        await asyncio.sleep(0.005)   # the first run has read state 0
        job.state = 1
        await run()
        await first
        return job
    assert asyncio.run(main()).seen == [0, 1]


def test_a_failed_run_fails_its_caller_and_the_others_run_again():
    async def main() -> tuple[Job, list[object]]:
        job = Job(fail_first=True)
        run = Coalesced(job)
        job.state = 1
        results = await asyncio.gather(run(), run(), return_exceptions=True)
        return job, results
    job, results = asyncio.run(main())
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert job.seen == [-1, 1]


def test_an_exception_reaches_a_lone_caller():
    with pytest.raises(RuntimeError):
        asyncio.run(Coalesced(Job(fail_first=True))())
