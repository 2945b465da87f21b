from __future__ import annotations

from keel.core.openapi import problem_responses
from keel.core.org_resource_routes import add_org_resource_routes
from keel.core.transactions import transactional_router
from keel.work.reports.schemas import ReportCreate, ReportRead, ReportUpdate
from keel.work.reports.service import resources

router = transactional_router(
    prefix="/orgs/{org_id}/reports", tags=["reports"], responses=problem_responses(400, 401, 403, 404, 422, 429)
)
add_org_resource_routes(
    router, resources=resources, create_schema=ReportCreate, update_schema=ReportUpdate, read_schema=ReportRead
)
