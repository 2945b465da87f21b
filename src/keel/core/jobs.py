"""Periodic jobs, each run once per due time across every process.

A job has a row in ``job_leases``: when it is next due and, while a worker
runs it, until when that worker holds it. Taking the lease is one UPDATE
that only succeeds for a due job nobody holds, so of all the workers that
look at the same moment exactly one runs it. A worker killed mid-run leaves
a lease that runs out; the job is then due again for any worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.clock import now
from keel.core.db import Database
from keel.core.models import Base


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_at: Mapped[datetime]
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    holder: Mapped[str | None] = mapped_column(String(64), default=None)
    last_finished_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """``run`` every ``every``; a run may take up to ``lease`` before another
    worker may start it again."""

    name: str
    every: timedelta
    run: Callable[[Database], Awaitable[None]]
    lease: timedelta = timedelta(minutes=10)


def _table() -> Table:
    table = JobLease.__table__
    assert isinstance(table, Table)
    return table


async def ensure_scheduled(session: AsyncSession, job: PeriodicJob) -> None:
    """Give ``job`` its row, due now, unless it has one."""
    table = _table()
    if await session.scalar(select(table.c.name).where(table.c.name == job.name)) is None:
        await session.execute(insert(table).values(name=job.name, due_at=now()))


async def take_if_due(session: AsyncSession, job: PeriodicJob, *, holder: str) -> datetime | None:
    """Lease ``job`` for ``holder`` if it is due and nobody holds it; the
    lease's end, or None when it is not this worker's to run now."""
    table = _table()
    moment = now()
    until = moment + job.lease
    taken = await session.execute(
        update(table)
        .where(
            table.c.name == job.name,
            table.c.due_at <= moment,
            (table.c.leased_until.is_(None)) | (table.c.leased_until < moment),
        )
        .values(leased_until=until, holder=holder)
        .returning(table.c.name)
    )
    return until if taken.first() is not None else None


async def finish(session: AsyncSession, job: PeriodicJob, *, holder: str, until: datetime) -> None:
    """Record a run that ended (well or not) and schedule the next one."""
    table = _table()
    moment = now()
    await session.execute(
        update(table)
        .where(table.c.name == job.name, table.c.holder == holder, table.c.leased_until == until)
        .values(due_at=moment + job.every, leased_until=None, holder=None, last_finished_at=moment)
    )
