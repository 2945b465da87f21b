"""Projects: the shared org-resource life cycle, plus summaries for task lists."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.org_resources import OrgResources
from keel.core.pagination import CursorCodec
from keel.core.principal import OrgScope
from keel.work.projects import repository
from keel.work.projects.models import Project
from keel.work.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate

resources = OrgResources(
    Project, ProjectRead.model_validate, event_prefix="project", noun="Project", event_fields=("name",)
)


async def create_project(session: AsyncSession, scope: OrgScope, data: ProjectCreate) -> ProjectRead:
    return await resources.create(session, scope, data.model_dump())


async def get_project(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> ProjectRead:
    return ProjectRead.model_validate(await resources.load(session, scope, project_id))


async def list_projects(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[ProjectRead], str | None]:
    return await resources.page(session, scope, codec, cursor=cursor, limit=limit)


async def update_project(
    session: AsyncSession, scope: OrgScope, project_id: uuid.UUID, changes: ProjectUpdate, *, expected: int | None
) -> ProjectRead:
    return await resources.update(session, scope, project_id, changes.model_dump(exclude_unset=True), expected=expected)


async def delete_project(
    session: AsyncSession, scope: OrgScope, project_id: uuid.UUID, *, expected: int | None
) -> None:
    await resources.delete(session, scope, project_id, expected=expected)


async def restore_project(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> ProjectRead:
    return await resources.restore(session, scope, project_id)


async def summaries(session: AsyncSession, scope: OrgScope, project_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Live project names by id, one query: for embedding in task lists."""
    return await repository.names(session, scope, project_ids)


async def exists(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> bool:
    return await resources.find(session, scope, project_id) is not None
