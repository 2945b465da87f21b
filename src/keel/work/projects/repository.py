"""All SQL of projects: the shared org-scoped queries (see keel.core.repository)."""

from __future__ import annotations

from keel.core.repository import OrgRepository
from keel.work.projects.models import Project


class ProjectRepository(OrgRepository[Project]):
    model = Project
