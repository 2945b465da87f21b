"""Group commit: items that arrive while a batch is written share the next
one; with ``every_s``, so do those arriving until that long after the last
batch began."""

from __future__ import annotations

import asyncio

from keel.core.group_commit import GroupCommit


class Writes:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def write(self, batch: list[int]) -> None:
        self.batches.append(batch)
        await self.release.wait()


async def test_items_arriving_during_a_write_share_the_next_one() -> None:
    writes = Writes()
    commit = GroupCommit(writes.write)
    writes.release.clear()
    first = commit.add(1)
    await asyncio.sleep(0)  # the first write has begun, and waits
    later = [commit.add(n) for n in (2, 3, 4)]
    writes.release.set()
    await asyncio.gather(first, *later)
    assert writes.batches == [[1], [2, 3, 4]]


async def test_without_a_pause_a_steady_flow_makes_a_batch_per_item() -> None:
    writes = Writes()
    commit = GroupCommit(writes.write)
    for n in range(3):
        await commit.add(n)
    assert writes.batches == [[0], [1], [2]]


async def test_with_every_s_a_steady_flow_is_written_in_batches() -> None:
    writes = Writes()
    commit = GroupCommit(writes.write, every_s=0.5)
    await commit.add(0)  # idle: written at once
    second = commit.add(1)
    await asyncio.sleep(0.05)  # well within the half second since the first write began
    third = commit.add(2)
    await asyncio.gather(second, third)
    assert writes.batches == [[0], [1, 2]]
