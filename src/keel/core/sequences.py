"""Numbers handed out in order per key (an org's event sequence, a user's
stream): a counter row per key, raised in the caller's transaction, so the
numbers commit with what they number and the row lock orders concurrent
writers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


async def reserve(
    session: AsyncSession, key: InstrumentedAttribute[Any], value: Any, last: InstrumentedAttribute[int], count: int
) -> int:
    """Reserve the next ``count`` numbers of ``value``'s counter (``last``
    holds the last one given out, in the row whose ``key`` is ``value``,
    created on first use); the first of them."""
    counter = last.class_
    raised = await session.execute(update(counter).where(key == value).values({last.key: last + count}).returning(last))
    highest = raised.scalar()
    if highest is None:
        try:
            async with session.begin_nested():
                await session.execute(insert(counter).values({key.key: value, last.key: count}))
        except IntegrityError:  # another writer created the row first
            return await reserve(session, key, value, last, count)
        highest = count
    return int(highest) - count + 1
