"""At 100k tasks on PostgreSQL the list queries use indexes, not sequential scans."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from keel.core.principal import OrgScope, Principal, Role
from keel.work.tasks.repository import TaskFilter, list_statement

TASKS = 100_000


@pytest.fixture
async def big_org(app) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """One org with 100k tasks (and a few other orgs), inserted set-wise."""
    org_id = uuid.uuid4()
    async with app.state.database.session(write=True) as session:
        for org in (org_id, uuid.uuid4(), uuid.uuid4()):
            await session.execute(
                text(
                    "INSERT INTO organizations (id, name, personal, created_at, updated_at) "
                    "VALUES (:id, 'big', false, now(), now())"
                ),
                {"id": org},
            )
            await session.execute(
                text(
                    "INSERT INTO tasks (id, org_id, title, description, status, priority, labels, version, "
                    "created_at, updated_at) "
                    "SELECT gen_random_uuid(), :org, 'task ' || n, 'about ' || (n % 997), "
                    "(ARRAY['todo','in_progress','blocked','done'])[1 + n % 4], n % 5, '[]', 1, "
                    "now() - n * interval '1 second', now() - n * interval '1 second' "
                    "FROM generate_series(1, :count) AS n"
                ),
                {"org": org, "count": TASKS if org == org_id else TASKS // 10},
            )
        await session.commit()
        await session.execute(text("ANALYZE tasks"))
        await session.commit()  # statistics from an uncommitted ANALYZE are rolled back
    return org_id


class Explain(Executable, ClauseElement):
    """EXPLAIN of a statement, with its bound parameters (SQLAlchemy's recipe)."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


async def explain(app, statement: Any, params: dict[str, Any] | None = None) -> str:  # type: ignore[no-untyped-def]
    async with app.state.database.session(write=False) as session:
        rows = (await session.execute(Explain(statement), params)).scalars().all()
    return "\n".join(rows)


@pytest.mark.postgres
@pytest.mark.readiness("work.list_uses_indexes")
async def test_list_queries_use_an_index(app, big_org: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    scope = OrgScope(org_id=big_org, role=Role.VIEWER, principal=Principal(user_id=uuid.uuid4()))
    cases = [
        (TaskFilter(), "-created_at"),
        (TaskFilter(status=["blocked"]), "-created_at"),
        (TaskFilter(), "-updated_at"),
        (TaskFilter(), "priority"),
        (TaskFilter(q="about 17"), "-created_at"),
    ]
    for task_filter, sort in cases:
        deep = [datetime(2020, 1, 1, tzinfo=UTC), uuid.UUID(int=0)] if sort.endswith("_at") else [2, uuid.UUID(int=0)]
        for after in (None, deep):
            statement, params = list_statement(
                scope,
                task_filter,
                dialect="postgresql",
                sort_field=sort.lstrip("-"),
                descending=sort.startswith("-"),
                after=after,
                limit=50,
            )
            plan = await explain(app, statement, params)
            assert "Seq Scan on tasks" not in plan, (task_filter, sort, plan)
            assert "Index" in plan or "Bitmap" in plan, plan
            if not task_filter.q and after is None:
                # The index supplies the order: the first page never sorts the org.
                # (Past the deep cursor nearly nothing is left; sorting that is fine.)
                assert "Sort" not in plan, (task_filter, sort, plan)
