from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.principal import OrgScope
from keel.work.projects.models import Project


async def names(session: AsyncSession, scope: OrgScope, project_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not project_ids:
        return {}
    statement = scope.scoped(select(Project.id, Project.name), Project).where(Project.id.in_(project_ids))
    return {row.id: row.name for row in await session.execute(statement)}
