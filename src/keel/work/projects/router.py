from __future__ import annotations

from keel.core.openapi import problem_responses
from keel.core.org_resource_routes import add_org_resource_routes
from keel.core.transactions import transactional_router
from keel.work.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate
from keel.work.projects.service import resources

router = transactional_router(
    prefix="/orgs/{org_id}/projects", tags=["projects"], responses=problem_responses(400, 401, 403, 404, 422, 429)
)
add_org_resource_routes(
    router, resources=resources, create_schema=ProjectCreate, update_schema=ProjectUpdate, read_schema=ProjectRead
)
