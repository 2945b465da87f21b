from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core import fulltext
from keel.core.principal import OrgScope
from keel.work.bookmarks.models import Bookmark
from keel.work.projects.models import Project
from keel.work.reports.models import Report
from keel.work.tasks.models import Task

# (kind, model, the column shown as the hit's title)
SEARCHED: list[tuple[str, Any, Any]] = [
    ("task", Task, Task.title),
    ("project", Project, Project.name),
    ("report", Report, Report.title),
    ("bookmark", Bookmark, Bookmark.title),
]


async def hits(
    session: AsyncSession, scope: OrgScope, query: str, *, after: tuple[float, str, uuid.UUID] | None, limit: int
) -> Sequence[Any]:
    """Ranked matches across the org's searchable resources, one UNION query,
    the best ``limit + 1`` after ``after``.

    Ordered by rank, then kind and id so equal ranks keep a stable order.
    """
    dialect = session.get_bind().dialect.name
    parts = [
        scope.scoped(
            fulltext.ranked(
                dialect, model, (literal(kind).label("kind"), model.id.label("id"), title.label("title")), query
            ),
            model,
        )
        for kind, model, title in SEARCHED
    ]
    found = union_all(*parts).subquery("found")
    statement = select(found)
    if after is not None:
        rank, kind, row_id = after
        statement = statement.where(
            or_(
                found.c.rank < rank,
                and_(found.c.rank == rank, found.c.kind > kind),
                and_(found.c.rank == rank, found.c.kind == kind, found.c.id > row_id),
            )
        )
    statement = statement.order_by(found.c.rank.desc(), found.c.kind, found.c.id).limit(limit + 1)
    return (await session.execute(statement)).all()
