"""Projects: the shared org-resource life cycle (routes generated from it),
plus the existence check task writes need."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.org_resources import OrgResources
from keel.core.principal import OrgScope
from keel.work.projects.repository import ProjectRepository
from keel.work.projects.schemas import ProjectRead

resources = OrgResources(
    ProjectRepository, ProjectRead.model_validate, event_prefix="project", noun="Project", event_fields=("name",)
)


async def name_of(session: AsyncSession, scope: OrgScope, project_id: uuid.UUID) -> str | None:
    """The live project's name, or None when the org has no such project."""
    project = await resources.find(session, scope, project_id)
    return project.name if project is not None else None
