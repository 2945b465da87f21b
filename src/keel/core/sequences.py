"""Numbers handed out in order per key (an org's event sequence, a user's
stream): a counter row per key, raised in the caller's transaction, so the
numbers commit with what they number and the row lock orders concurrent
writers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import ReturningInsert

from keel.core.db import execute_core

_INSERT_BY_DIALECT: dict[str, Callable[[Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


@cache
def _raise_or_create(table: Table, key: str, last: str, dialect: str) -> ReturningInsert[Any]:
    # Built once per counter and database: events reserve for every batch.
    # One statement creates the counters met for the first time and raises
    # the others, each by its own count (``excluded`` is the row offered).
    offered = _INSERT_BY_DIALECT[dialect](table)
    return offered.on_conflict_do_update(
        index_elements=[table.c[key]], set_={last: table.c[last] + offered.excluded[last]}
    ).returning(table.c[key], table.c[last])


async def reserve(
    session: AsyncSession, key: InstrumentedAttribute[Any], last: InstrumentedAttribute[int], counts: Mapping[Any, int]
) -> dict[Any, int]:
    """Reserve the next ``counts[value]`` numbers of each ``value``'s counter
    (``last`` holds the last one given out, in the row whose ``key`` is
    ``value``, created on first use), in one statement; the first of each.
    Rows go in key order, so that writers reserving for overlapping keys
    lock them in the same order and cannot deadlock."""
    if not counts:
        return {}
    table = last.class_.__table__
    assert isinstance(table, Table)
    statement = _raise_or_create(table, key.key, last.key, session.get_bind().dialect.name)
    rows = await execute_core(
        session, statement, [{key.key: value, last.key: counts[value]} for value in sorted(counts)]
    )
    highest = {row[key.key]: row[last.key] for row in rows.mappings()}  # the last number given out, by key
    return {value: highest[value] - count + 1 for value, count in counts.items()}
