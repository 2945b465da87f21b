from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import execute_core, first_row
from keel.identity.users.models import User


async def by_email(session: AsyncSession, email_normalized: str) -> User | None:
    statement = select(User).where(User.email_normalized == email_normalized, User.deleted_at.is_(None))
    return (await session.scalars(statement)).first()


async def active(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    statement = select(User).where(User.id == user_id, User.deleted_at.is_(None))
    return (await session.scalars(statement)).first()


# Run on every authenticated request: built once.
_LAST_SEEN = select(User.last_active_at).where(User.id == bindparam("user_id"), User.deleted_at.is_(None))
# KEY SHARE: an account deletion (FOR UPDATE) waits for the request, while
# the request's own "last seen" UPDATE (FOR NO KEY UPDATE) does not conflict
# with the KEY SHARE of other in-flight requests of the same user. (FOR SHARE
# did: two writers of one user each held it and each wanted to upgrade it to
# stamp the row, and PostgreSQL broke the deadlock with a 500.)
_LAST_SEEN_LOCKED = _LAST_SEEN.with_for_update(read=True, key_share=True)


async def last_seen(session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False) -> tuple[bool, datetime | None]:
    """(is the user active, when last seen): a column read on every request.

    ``lock`` key-share-locks the row, so an account deletion waits for the request.
    """
    row = await first_row(session, _LAST_SEEN_LOCKED if lock else _LAST_SEEN, {"user_id": user_id})
    return (row is not None, row.last_active_at if row is not None else None)


async def lock_for_deletion(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    statement = select(User).where(User.id == user_id, User.deleted_at.is_(None)).with_for_update()
    return (await session.scalars(statement)).first()


async def email_taken(session: AsyncSession, email_normalized: str) -> bool:
    statement = select(User.id).where(User.email_normalized == email_normalized)
    return (await session.scalar(statement)) is not None


# Built once: stamps run for every batch of a busy realtime gateway.
_TOUCH_ACTIVITY = (
    update(User)
    .where(
        User.id.in_(bindparam("user_ids", expanding=True)),
        or_(User.last_active_at.is_(None), User.last_active_at < bindparam("stale_before")),
    )
    .values(last_active_at=bindparam("at"))
)


async def touch_activity(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], at: datetime, stale_before: datetime
) -> None:
    """Record activity at most once per interval: a no-op for a user whose stamp is fresh.

    Written past the ORM: a stamp is not a change of access (see keel.identity.access_cache).
    """
    await execute_core(session, _TOUCH_ACTIVITY, {"user_ids": list(user_ids), "at": at, "stale_before": stale_before})


_ACTIVE_AMONG = select(User.id, User.last_active_at).where(
    User.id.in_(bindparam("user_ids", expanding=True)), User.deleted_at.is_(None)
)
_ACTIVE_AMONG_LOCKED = _ACTIVE_AMONG.order_by(User.id).with_for_update(read=True, key_share=True)


async def active_among(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], *, lock: bool
) -> dict[uuid.UUID, datetime | None]:
    """Each of these users who may still act, with their last stamped activity."""
    statement = _ACTIVE_AMONG_LOCKED if lock else _ACTIVE_AMONG
    rows = await execute_core(session, statement, {"user_ids": sorted(user_ids)})
    return {row.id: row.last_active_at for row in rows}
