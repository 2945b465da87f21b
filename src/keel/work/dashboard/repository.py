from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.principal import OrgScope
from keel.work.tasks.models import Task


@dataclass(frozen=True, slots=True)
class StatusCount:
    status: str
    tasks: int
    overdue: int


async def task_counts(session: AsyncSession, scope: OrgScope, now: datetime) -> list[StatusCount]:
    """Tasks and overdue tasks per status, in one grouped query."""
    overdue = func.sum(case((and_(Task.due_at < now, Task.status != "done"), 1), else_=0))
    statement = scope.scoped(select(Task.status, func.count().label("tasks"), overdue.label("overdue")), Task).group_by(
        Task.status
    )
    return [StatusCount(row.status, int(row.tasks), int(row.overdue or 0)) for row in await session.execute(statement)]
