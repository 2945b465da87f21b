from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core import fulltext
from keel.core.principal import OrgScope
from keel.work.bookmarks.models import Bookmark
from keel.work.projects.models import Project
from keel.work.reports.models import Report
from keel.work.tasks.models import Task

# Each kind ranks at most its org's newest RANK_WINDOW matches (see
# keel.core.fulltext.ranked): a search costs the same for a word in every
# task as for a word in 10,000, and more matches than that is a query to
# narrow, not a list to page through.
RANK_WINDOW = 10_000

# (kind, model, the column shown as the hit's title)
SEARCHED: list[tuple[str, Any, Any]] = [
    ("task", Task, Task.title),
    ("project", Project, Project.name),
    ("report", Report, Report.title),
    ("bookmark", Bookmark, Bookmark.title),
]


def _best_of(part: Select[Any], kind: str, *, after: tuple[float, str, uuid.UUID] | None, limit: int) -> Select[Any]:
    """One kind's best ``limit`` rows after ``after``: the top of the union is
    made of the tops of its parts, so no part hands on more than a page."""
    ranked = part.subquery(kind)
    statement = select(ranked)
    if after is not None:
        rank, after_kind, row_id = after
        # Within one kind the (rank, kind, id) order is (rank, id).
        if kind > after_kind:
            statement = statement.where(ranked.c.rank <= rank)
        elif kind < after_kind:
            statement = statement.where(ranked.c.rank < rank)
        else:
            statement = statement.where(or_(ranked.c.rank < rank, and_(ranked.c.rank == rank, ranked.c.id > row_id)))
    return select(statement.order_by(ranked.c.rank.desc(), ranked.c.id).limit(limit).subquery(f"best_{kind}"))


def statement(
    dialect: str, scope: OrgScope, query: str, *, after: tuple[float, str, uuid.UUID] | None, limit: int
) -> Select[Any]:
    """Ranked matches across the org's searchable resources, one UNION query,
    the best ``limit`` after ``after``.

    Ordered by rank, then kind and id so equal ranks keep a stable order.
    """
    parts = [
        _best_of(
            scope.scoped(
                fulltext.ranked(
                    dialect,
                    model,
                    (literal(kind).label("kind"), model.id.label("id"), title.label("title")),
                    query,
                    window=RANK_WINDOW,
                ),
                model,
            ),
            kind,
            after=after,
            limit=limit,
        )
        for kind, model, title in SEARCHED
    ]
    found = union_all(*parts).subquery("found")
    return select(found).order_by(found.c.rank.desc(), found.c.kind, found.c.id).limit(limit)


async def hits(
    session: AsyncSession, scope: OrgScope, query: str, *, after: tuple[float, str, uuid.UUID] | None, limit: int
) -> Sequence[Any]:
    """The best ``limit + 1`` matches after ``after`` (one more tells whether a next page exists)."""
    dialect = session.get_bind().dialect.name
    best = statement(dialect, scope, query, after=after, limit=limit + 1)
    rows: Sequence[Any] = (await session.execute(best)).all()
    return rows
