"""Numbers handed out in order per key (an org's event sequence, a user's
stream): a counter row per key, raised in the caller's transaction, so the
numbers commit with what they number and the row lock orders concurrent
writers."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, Update, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from keel.core.db import execute_core


@cache
def _statements(table: Table, key: str, last: str) -> tuple[Update, Insert]:
    # Built once per counter: reserving runs for every batch of events.
    raise_by = (
        update(table)
        .where(table.c[key] == bindparam("_key"))
        .values({last: table.c[last] + bindparam("_count")})
        .returning(table.c[last])
    )
    first_use = insert(table).values({key: bindparam("_key"), last: bindparam("_count")})
    return raise_by, first_use


async def reserve(
    session: AsyncSession, key: InstrumentedAttribute[Any], value: Any, last: InstrumentedAttribute[int], count: int
) -> int:
    """Reserve the next ``count`` numbers of ``value``'s counter (``last``
    holds the last one given out, in the row whose ``key`` is ``value``,
    created on first use); the first of them."""
    table = last.class_.__table__
    assert isinstance(table, Table)
    raise_by, first_use = _statements(table, key.key, last.key)
    params = {"_key": value, "_count": count}
    highest = (await execute_core(session, raise_by, params)).scalar()
    if highest is None:
        try:
            async with session.begin_nested():
                await execute_core(session, first_use, params)
        except IntegrityError:  # another writer created the row first
            return await reserve(session, key, value, last, count)
        highest = count
    return int(highest) - count + 1
