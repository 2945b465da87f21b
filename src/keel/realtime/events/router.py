from __future__ import annotations

from typing import Annotated

from fastapi import Query

from keel.core.auth import CurrentUser
from keel.core.openapi import problem_responses
from keel.core.pagination import CursorParam, Cursors, Page
from keel.core.transactions import DbSession, transactional_router
from keel.realtime.events import service
from keel.realtime.events.schemas import EventRead

router = transactional_router(prefix="/events", tags=["realtime"], responses=problem_responses(400, 401, 403, 422, 429))

DEFAULT_EVENTS = 100
MAX_EVENTS = 1000


@router.get("", response_model=Page[EventRead])
async def replay_events(
    principal: CurrentUser,
    session: DbSession,
    cursors: Cursors,
    cursor: CursorParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS, description=f"Page size (max {MAX_EVENTS}).")] = DEFAULT_EVENTS,
) -> Page[EventRead]:
    """The caller's unexpired events in seq order, a page at a time. Auth: user."""
    assert principal.user_id is not None
    items, next_cursor = await service.replay(session, cursors, principal.user_id, cursor=cursor, limit=limit)
    return Page[EventRead](items=items, next_cursor=next_cursor)
