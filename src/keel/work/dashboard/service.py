"""The org at a glance: task counts by status, overdue tasks, who is active."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.principal import OrgScope
from keel.identity.orgs import service as orgs
from keel.work.dashboard import repository
from keel.work.dashboard.schemas import ActiveMember, Dashboard
from keel.work.tasks.schemas import TaskStatus


async def dashboard(session: AsyncSession, scope: OrgScope, *, active_within_s: int) -> Dashboard:
    moment = now()
    counts = await repository.task_counts(session, scope, moment)
    by_status = {status.value: 0 for status in TaskStatus}
    by_status.update({count.status: count.tasks for count in counts})
    active = await orgs.recently_active_members(session, scope.org_id, moment - timedelta(seconds=active_within_s))
    return Dashboard(
        tasks_by_status=by_status,
        open_tasks=sum(count.tasks for count in counts if count.status != TaskStatus.DONE),
        overdue_tasks=sum(count.overdue for count in counts),
        active_members=[
            ActiveMember(id=member.user_id, name=member.name, last_active_at=member.last_active_at) for member in active
        ],
        active_within_s=active_within_s,
        generated_at=moment,
    )
