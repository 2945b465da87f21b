from __future__ import annotations

from typing import Annotated

from fastapi import Query

from keel.core.auth import ViewerScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.transactions import transactional_router
from keel.work.search import service
from keel.work.search.schemas import SearchHit

router = transactional_router(
    prefix="/orgs/{org_id}/search",
    long_reads=True,
    tags=["search"],
    responses=problem_responses(400, 401, 403, 404, 422, 429),
)


@router.get("", response_model=Page[SearchHit])
async def search(
    scope: ViewerScope,
    cursors: Cursors,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words to find (all must match).")],
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[SearchHit]:
    """Tasks, projects, reports and bookmarks matching q, best first. Auth: viewer+."""
    hits, next_cursor = await service.search(scope.session, scope, cursors, query=q, cursor=cursor, limit=limit)
    return Page[SearchHit](items=hits, next_cursor=next_cursor)
