"""The list and search queries read through indexes: their plans, checked on data shaped like a large org."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.platform import platform
from keel.core.principal import OrgScope, Principal, Role
from keel.work.search import repository as search
from keel.work.tasks.repository import TaskFilter, TaskRepository

TASKS = 100_000


@pytest.fixture
async def big_org(app) -> uuid.UUID:  # type: ignore[no-untyped-def]
    """One org with 100k tasks (and a few other orgs), inserted set-wise."""
    org_id = uuid.uuid4()
    async with platform(app).database.session(write=True) as session:
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


def _literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


async def explain(app, statement: Any, params: dict[str, Any], *, long_reads: bool = False) -> str:  # type: ignore[no-untyped-def]
    """The plan PostgreSQL runs ``statement`` with on keel's connections:
    prepared (keel's driver prepares every statement), planned as keel's
    connection settings say (a generic plan, for any parameter values; on the
    long-read connections a plan for ``params``), and explained for ``params``."""
    database = platform(app).database
    opened = database.session(write=False, long_reads=True) if long_reads else database.session(write=True)
    async with opened as session:
        connection = await session.connection()
        expanded = statement.compile(dialect=connection.dialect).construct_expanded_state(params)
        values = ", ".join(_literal(value) for value in expanded.positional_parameters)
        await connection.exec_driver_sql(f"PREPARE keel_explained AS {expanded.statement}")
        try:
            rows = (await connection.exec_driver_sql(f"EXPLAIN EXECUTE keel_explained({values})")).scalars().all()
        finally:
            await connection.exec_driver_sql("DEALLOCATE keel_explained")
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
    ]
    async with platform(app).database.session(write=False) as session:
        tasks = TaskRepository(session, scope)
    for task_filter, sort in cases:
        deep = [datetime(2020, 1, 1, tzinfo=UTC), uuid.UUID(int=0)] if sort.endswith("_at") else [2, uuid.UUID(int=0)]
        for after in (None, deep):
            statement, params = tasks.list_statement(
                task_filter,
                sort_field=sort.lstrip("-"),
                descending=sort.startswith("-"),
                after=after,
                limit=50,
            )
            plan = await explain(app, statement, params)
            assert "org_id = $1" in plan, plan  # the generic plan, made for any org
            assert "Seq Scan on tasks" not in plan, (task_filter, sort, plan)
            assert "Index" in plan or "Bitmap" in plan, plan
            if after is None:
                # The index supplies the order: the first page never sorts the org.
                # (Past the deep cursor nearly nothing is left; sorting that is fine.)
                assert "Sort" not in plan, (task_filter, sort, plan)


@pytest.mark.postgres
async def test_list_pages_are_not_planned_per_request(app, big_org: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    """A client loading the first page again and again, and walking on
    through cursors: each page's prepared statement runs on the plan made
    once for it. Left to choose, PostgreSQL planned a large org's pages on
    every execution, which cost it more than running them."""
    scope = OrgScope(org_id=big_org, role=Role.VIEWER, principal=Principal(user_id=uuid.uuid4()))

    async def load(session: AsyncSession, after: list[Any] | None) -> list[Any]:
        rows = await TaskRepository(session, scope).page(
            TaskFilter(), sort_field="created_at", descending=True, after=after, limit=50
        )
        assert len(rows) == 51
        return [rows[49]["created_at"], rows[49]["id"]]

    async with platform(app).database.session(write=True) as session:
        for _ in range(8):
            after = await load(session, None)
        for _ in range(8):
            after = await load(session, after)
        plans = (
            await session.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE '%FROM tasks%ORDER BY tasks.created_at DESC%' "
                    "AND statement NOT LIKE '%pg_prepared_statements%'"
                )
            )
        ).all()
    assert sorted(plans) == [(8, 0), (8, 0)], plans


@pytest.mark.postgres
async def test_text_filtered_lists_are_planned_for_their_words(app, big_org: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    """A text-filtered list runs on the long-read connections, planned for the
    words asked: a word in every task walks the list's ordered index (the
    first page is the first matches, nothing sorted); a rare word reads its
    few matches from the full-text index. One generic plan bitmapped all of
    a common word's matches and sorted them (110 ms at 100,000 matches)."""
    scope = OrgScope(org_id=big_org, role=Role.VIEWER, principal=Principal(user_id=uuid.uuid4()))
    async with platform(app).database.session(write=False) as session:
        tasks = TaskRepository(session, scope)
    for words, reads in (("task", "ix_tasks_live_created"), ("about 17", "ix_tasks_org_search_vector")):
        statement, params = tasks.list_statement(
            TaskFilter(q=words), sort_field="created_at", descending=True, after=None, limit=50
        )
        plan = await explain(app, statement, params, long_reads=True)
        assert reads in plan, (words, plan)
        assert "Seq Scan on tasks" not in plan, (words, plan)
        if words == "task":
            assert "Sort" not in plan, plan


@pytest.mark.postgres
async def test_search_reads_only_the_orgs_newest_matches(app, big_org: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    """A search reaches the org's rows through an index led by org_id, never
    scanning every org's tasks: a word in every task walks the org's newest
    tasks and stops at the rank window (nothing but the window is ranked or
    sorted); a rare word reads its few matches from the full-text index."""
    scope = OrgScope(org_id=big_org, role=Role.VIEWER, principal=Principal(user_id=uuid.uuid4()))
    for words in ("about", "about 17"):
        for after in (None, (0.5, "task", uuid.UUID(int=0))):
            statement = search.statement("postgresql", scope, words, after=after, limit=21)
            plan = await explain(app, statement, {}, long_reads=True)
            assert "Seq Scan on tasks" not in plan, plan
            if words == "about":
                assert re.search(r"Limit .*\n\s*->  Index Scan Backward using ix_tasks_live_created", plan), plan
            else:
                assert "ix_tasks_org_search_vector" in plan, plan


@pytest.mark.sqlite
async def test_text_filtered_list_walks_the_ordered_index_on_sqlite(app) -> None:  # type: ignore[no-untyped-def]
    """A task list filtered by a word reads its matches once and walks the
    list's index in order until the page is full: a word in every task costs
    a page, never a sort of all its matches."""
    org_id = uuid.uuid4()
    async with platform(app).database.session(write=True) as session:
        await session.execute(
            text("INSERT INTO organizations (id, name, personal, created_at, updated_at) VALUES (:id, 'o', 0, 0, 0)"),
            {"id": org_id.hex},
        )
        await session.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
                "INSERT INTO tasks (id, org_id, title, description, status, priority, labels, version, "
                "created_at, updated_at) SELECT lower(hex(randomblob(16))), :org, 'common ' || i, '', 'todo', 0, "
                "'[]', 1, datetime(i, 'unixepoch'), datetime(i, 'unixepoch') FROM n"
            ),
            {"org": org_id.hex},
        )
        await session.commit()
        # With statistics SQLite knows an org holds many rows, which made it
        # drive the list by the matches' rowids and sort them.
        await session.execute(text("ANALYZE"))
        await session.commit()
    scope = OrgScope(org_id=org_id, role=Role.VIEWER, principal=Principal(user_id=uuid.uuid4()))
    async with platform(app).database.session(write=False) as session:
        statement, params = TaskRepository(session, scope).list_statement(
            TaskFilter(q="common"), sort_field="created_at", descending=True, after=None, limit=50
        )
        connection = await session.connection()
        expanded = statement.compile(dialect=connection.dialect).construct_expanded_state(params)
        explained = f"EXPLAIN QUERY PLAN {expanded.statement}"
        values = tuple(str(value) for value in expanded.positional_parameters)  # the plan is for any values
        plan = (await connection.exec_driver_sql(explained, values)).all()
    details = "\n".join(str(row[-1]) for row in plan)
    assert "ix_tasks_live_created" in details, details
    assert "TEMP B-TREE" not in details, details
