from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.pagination import keyset
from keel.core.principal import OrgScope
from keel.work.projects.models import Project


async def get(
    session: AsyncSession, scope: OrgScope, project_id: uuid.UUID, *, deleted: bool = False
) -> Project | None:
    statement = scope.scoped(select(Project), Project, include_deleted=deleted).where(Project.id == project_id)
    if deleted:
        statement = statement.where(Project.deleted_at.is_not(None))
    return (await session.scalars(statement)).first()


async def page(session: AsyncSession, scope: OrgScope, *, after: Sequence[Any] | None, limit: int) -> Sequence[Project]:
    statement = keyset(
        scope.scoped(select(Project), Project),
        [Project.created_at, Project.id],
        descending=True,
        after=after,
        limit=limit,
    )
    return (await session.scalars(statement)).all()


async def names(session: AsyncSession, scope: OrgScope, project_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not project_ids:
        return {}
    statement = scope.scoped(select(Project.id, Project.name), Project).where(Project.id.in_(project_ids))
    return {row.id: row.name for row in await session.execute(statement)}
