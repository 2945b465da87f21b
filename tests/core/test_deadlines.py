"""Request deadlines from one periodic sweep (``RequestDeadlines``)."""

from __future__ import annotations

import asyncio

import pytest

from keel.core.middleware.deadlines import RequestDeadlines


async def _request(deadlines: RequestDeadlines, work_s: float) -> str:
    """A stand-in for a request: registers, works, reports how it ended."""
    task = deadlines.start()
    try:
        await asyncio.sleep(work_s)
    except asyncio.CancelledError:
        if deadlines.finish(task):
            task.uncancel()
            return "timed out"
        raise
    return "timed out late" if deadlines.finish(task) else "done"


async def test_only_requests_past_their_deadline_are_cancelled() -> None:
    deadlines = RequestDeadlines(timeout_s=0.2)
    slow = asyncio.create_task(_request(deadlines, work_s=5))
    await asyncio.sleep(0.05)
    quick = asyncio.create_task(_request(deadlines, work_s=0.05))
    later_slow = asyncio.create_task(_request(deadlines, work_s=5))
    assert await quick == "done"
    assert await asyncio.wait_for(slow, timeout=2) == "timed out"
    assert not later_slow.done()  # started later: its deadline is still ahead
    assert await asyncio.wait_for(later_slow, timeout=2) == "timed out"
    # Handled timeouts leave no cancellation behind.
    assert slow.cancelling() == 0
    assert later_slow.cancelling() == 0


async def test_deadline_is_kept_within_one_sweep_interval() -> None:
    deadlines = RequestDeadlines(timeout_s=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(_request(deadlines, work_s=5), timeout=2) == "timed out"
    took = loop.time() - started
    assert 0.3 <= took < 0.3 + deadlines.sweep_interval_s + 0.5  # slack for a loaded machine


async def test_cancellation_by_someone_else_is_not_mistaken_for_a_timeout() -> None:
    deadlines = RequestDeadlines(timeout_s=10)
    request = asyncio.create_task(_request(deadlines, work_s=5))
    await asyncio.sleep(0.01)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request


def test_sweep_interval_follows_the_timeout_within_bounds() -> None:
    assert RequestDeadlines(timeout_s=30).sweep_interval_s == 0.5
    assert RequestDeadlines(timeout_s=2).sweep_interval_s == pytest.approx(0.1)
    assert RequestDeadlines(timeout_s=0.05).sweep_interval_s == 0.01
