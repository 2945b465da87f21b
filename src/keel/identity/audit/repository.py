from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.pagination import KeysetQuery
from keel.core.principal import OrgScope, scoped_template
from keel.identity.audit.models import AuditEvent


def add(session: AsyncSession, event: AuditEvent) -> None:
    session.add(event)


_PAGE = KeysetQuery.of(
    scoped_template(select(AuditEvent), AuditEvent), [AuditEvent.created_at, AuditEvent.id], descending=True
)


async def page(
    session: AsyncSession, scope: OrgScope, *, after: Sequence[Any] | None, limit: int
) -> Sequence[AuditEvent]:
    statement, params = _PAGE.page(after, limit)
    return (await session.scalars(statement, scope.params(**params))).all()


async def for_actor(session: AsyncSession, user_id: uuid.UUID) -> Sequence[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.actor_user_id == user_id).order_by(AuditEvent.created_at)
    return (await session.scalars(statement)).all()


async def forget_actor_origin(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Drop the address and user agent of a deleted user's events; the rows stay.

    Events this transaction recorded are written first, so they are covered too.
    """
    await session.flush()
    await session.execute(
        update(AuditEvent).where(AuditEvent.actor_user_id == user_id).values(ip=None, user_agent=None)
    )
