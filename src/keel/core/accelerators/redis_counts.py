"""Accelerator: rate-limit counts sent to Redis in one script call per event-loop iteration.

What it replaces: the `limits` library's Redis storage, which sends each
count as its own round trip (a script call through redis-py: a pooled
connection taken and given back, a write, a read under a timeout). Here a
count joins a batch; the batch is sent once the loop has run the callbacks
that were ready with it, as one script call through redis-py, and each
waiting request gets its own count. A count is the same fixed window as
`limits`' (increment, and set the expiry when the increment created the
key), so the limit is exact, whatever the batch. Measured effect, and the A/B
that keeps it: docs/performance.md ("Accelerators").
"""

from __future__ import annotations

import asyncio
import time

from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

# Increment each window's counter; the increment that creates one starts its window.
_COUNT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then
        redis.call('EXPIRE', key, ARGV[i])
    end
    counts[i] = count
end
return counts
"""

_Count = tuple[str, int, "asyncio.Future[int]"]


class PipelinedCounts:
    """Fixed-window counters in Redis under ``key_prefix``; the same two
    calls as a `limits` storage (``incr``, ``get_expiry``), so the rate
    limiter treats both alike. Failures raise `limits`' ``StorageError``."""

    def __init__(self, client: Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix + ":"
        self._script_sha = ""
        self._batch: list[_Count] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def incr(self, key: str, expiry: int) -> int:
        """The key's count after this increment (1 opens a window of ``expiry`` seconds)."""
        loop = asyncio.get_running_loop()
        counted: asyncio.Future[int] = loop.create_future()
        self._batch.append((self._prefix + key, expiry, counted))
        if len(self._batch) == 1:
            # Runs after the callbacks already ready: the requests woken with
            # this one count first and join the batch.
            loop.call_soon(self._send_batch)
        return await counted

    async def get_expiry(self, key: str) -> float:
        """When the key's window ends (epoch seconds); now if it has none."""
        try:
            remaining_ms = await self._client.pttl(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise StorageError(exc) from exc
        return time.time() + max(0, remaining_ms) / 1000

    def _send_batch(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Count]) -> None:
        try:
            counts = await self._counts([(key, expiry) for key, expiry, _ in batch])
        except Exception as exc:
            failure = StorageError(exc)
            for _, _, counted in batch:
                if not counted.done():
                    counted.set_exception(failure)
            return
        except BaseException:  # cancelled (the process is stopping): so are its waiters
            for _, _, counted in batch:
                counted.cancel()
            raise
        for (_, _, counted), count in zip(batch, counts, strict=True):
            if not counted.done():  # its request may have been cancelled meanwhile
                counted.set_result(count)

    async def _counts(self, keys: list[tuple[str, int]]) -> list[int]:
        if not self._script_sha:
            self._script_sha = await self._client.script_load(_COUNT_SCRIPT)
        names, expiries = [key for key, _ in keys], [expiry for _, expiry in keys]
        try:
            counts = await self._client.evalsha(self._script_sha, len(names), *names, *expiries)
        except NoScriptError:  # Redis restarted, or its scripts were flushed
            self._script_sha = await self._client.script_load(_COUNT_SCRIPT)
            counts = await self._client.evalsha(self._script_sha, len(names), *names, *expiries)
        return [int(count) for count in counts]

    async def close(self) -> None:
        """Wait for batches in flight (their requests are still waiting on them)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
