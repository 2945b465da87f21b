"""Readers' "last seen" stamps, written after their responses.

A read request finds its caller's stamp due at most once per interval.
Written inside the request, that stamp held the read's response back behind
a write transaction: on SQLite behind every queued writer, on PostgreSQL
three round trips, each waiting its turn on a loaded event loop. Here a read
hands its stamp over and answers at once; one task writes the stamps handed
over meanwhile, each kind of row in one UPDATE, and goes on while more come.

Best effort, as a "last seen" time is: a write that fails is logged and
dropped (the access memo's entry expires within seconds, and the next read
finds the stamp due again). Stopping the app writes what is left. Write
requests still stamp in their own transaction, which already holds the lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import Database
from keel.core.logging import get_logger

# Stamps rows (users, API keys) not stamped since ``stale_before`` with ``at``.
Touch = Callable[[AsyncSession, Sequence[uuid.UUID], datetime, datetime], Awaitable[None]]

_log = get_logger("keel.last_seen")


class LastSeenStamps:
    def __init__(self, database: Database, interval: timedelta) -> None:
        self._database = database
        self._interval = interval
        self._due: dict[Touch, dict[uuid.UUID, datetime]] = {}
        self._writing: asyncio.Task[None] | None = None

    def hand_over(self, touch: Touch, row_id: uuid.UUID, at: datetime) -> None:
        """Have ``row_id`` stamped with ``at`` soon, without waiting for it."""
        self._due.setdefault(touch, {})[row_id] = at
        if self._writing is None:
            self._writing = asyncio.get_running_loop().create_task(self._write_all())

    async def settle(self) -> None:
        """Return once every stamp handed over so far is written or given up."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    async def _write_all(self) -> None:
        try:
            while self._due:
                due, self._due = self._due, {}
                try:
                    await self._write(due)
                except Exception as exc:  # best effort: logged, and due again at the next read
                    stamps = sum(len(rows) for rows in due.values())
                    _log.warning("last_seen.not_written", error=type(exc).__name__, stamps=stamps)
        finally:
            self._writing = None

    async def _write(self, due: dict[Touch, dict[uuid.UUID, datetime]]) -> None:
        async with self._database.session(write=True) as session:
            for touch, rows in due.items():
                # One time for the batch: its stamps were handed over within moments.
                at = max(rows.values())
                await touch(session, list(rows), at, at - self._interval)
            await session.commit()
