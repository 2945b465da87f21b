"""Projects: org-scoped, soft-deleted, versioned; every change emits an event."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import NotFound
from keel.core.outbox import emit
from keel.core.pagination import CursorCodec, page_of
from keel.core.principal import OrgScope, Role
from keel.core.versioning import check_version, flush_versioned, restore, soft_delete
from keel.work.projects import repository
from keel.work.projects.models import Project
from keel.work.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate

LIST_SORT = "-created_at"


async def _event(session: AsyncSession, scope: OrgScope, kind: str, project: Project) -> None:
    await emit(
        session,
        f"project.{kind}",
        {"id": str(project.id), "name": project.name, "version": project.version},
        org_id=scope.org_id,
    )


async def _get(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> Project:
    project = await repository.get(session, scope, project_id)
    if project is None:
        raise NotFound("Project not found.")
    return project


async def create_project(session: AsyncSession, scope: OrgScope, data: ProjectCreate) -> ProjectRead:
    scope.require(Role.MEMBER)
    project = Project(org_id=scope.org_id, created_by_id=scope.principal.user_id, **data.model_dump())
    session.add(project)
    await session.flush()
    await _event(session, scope, "created", project)
    return ProjectRead.model_validate(project)


async def get_project(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> ProjectRead:
    return ProjectRead.model_validate(await _get(session, scope, project_id))


async def list_projects(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[ProjectRead], str | None]:
    after = codec.decode(cursor, LIST_SORT) if cursor else None
    rows, more = page_of(await repository.page(session, scope, after=after, limit=limit), limit)
    next_cursor = codec.encode(LIST_SORT, [rows[-1].created_at, rows[-1].id]) if more else None
    return [ProjectRead.model_validate(row) for row in rows], next_cursor


async def update_project(
    session: AsyncSession, scope: OrgScope, project_id: uuid.UUID, changes: ProjectUpdate, *, expected: int | None
) -> ProjectRead:
    scope.require(Role.MEMBER)
    project = await _get(session, scope, project_id)
    check_version(project.version, expected)
    for name, value in changes.model_dump(exclude_unset=True).items():
        setattr(project, name, value)
    await flush_versioned(session)
    await _event(session, scope, "updated", project)
    return ProjectRead.model_validate(project)


async def delete_project(
    session: AsyncSession, scope: OrgScope, project_id: uuid.UUID, *, expected: int | None
) -> None:
    scope.require(Role.MEMBER)
    project = await _get(session, scope, project_id)
    await soft_delete(session, project, expected)
    await _event(session, scope, "deleted", project)


async def restore_project(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> ProjectRead:
    scope.require(Role.ADMIN)
    project = await repository.get(session, scope, project_id, deleted=True)
    if project is None:
        raise NotFound("No deleted project with that id.")
    await restore(session, project)
    await _event(session, scope, "restored", project)
    return ProjectRead.model_validate(project)


async def summaries(session: AsyncSession, scope: OrgScope, project_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Live project names by id, one query: for embedding in task lists."""
    return await repository.names(session, scope, project_ids)


async def exists(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> bool:
    return await repository.get(session, scope, project_id) is not None
