"""Search across the org's tasks, projects, reports and bookmarks, ranked."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import BadRequest
from keel.core.pagination import CursorCodec, page_of
from keel.core.principal import OrgScope
from keel.work.search import repository
from keel.work.search.schemas import SearchHit

SORT = "-rank"


async def search(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, query: str, cursor: str | None, limit: int
) -> tuple[list[SearchHit], str | None]:
    after = None
    if cursor:
        values = codec.decode(cursor, SORT + ":" + query)
        try:
            after = (float(values[0]), str(values[1]), uuid.UUID(str(values[2])))
        except (IndexError, TypeError, ValueError):
            raise BadRequest("The cursor is invalid.") from None
    rows, more = page_of(await repository.hits(session, scope, query, after=after, limit=limit), limit)
    hits = [SearchHit(kind=row.kind, id=row.id, title=row.title, rank=float(row.rank or 0)) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = codec.encode(SORT + ":" + query, [float(last.rank or 0), last.kind, last.id])
    return hits, next_cursor
