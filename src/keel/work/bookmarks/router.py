from __future__ import annotations

from keel.core.openapi import problem_responses
from keel.core.org_resource_routes import add_org_resource_routes
from keel.core.transactions import transactional_router
from keel.work.bookmarks.schemas import BookmarkCreate, BookmarkRead, BookmarkUpdate
from keel.work.bookmarks.service import resources, stored_values

router = transactional_router(
    prefix="/orgs/{org_id}/bookmarks", tags=["bookmarks"], responses=problem_responses(400, 401, 403, 404, 422, 429)
)
add_org_resource_routes(
    router,
    resources=resources,
    create_schema=BookmarkCreate,
    update_schema=BookmarkUpdate,
    read_schema=BookmarkRead,
    create_values=lambda body: stored_values(body, partial=False),
    update_values=lambda body: stored_values(body, partial=True),
)
