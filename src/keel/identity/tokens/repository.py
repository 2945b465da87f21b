from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.identity.tokens.models import RefreshToken


async def by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """Locked: two tabs refreshing at once are served one after the other."""
    statement = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
    return (await session.scalars(statement)).first()


async def get(session: AsyncSession, token_id: uuid.UUID) -> RefreshToken | None:
    return await session.get(RefreshToken, token_id)


async def revoke_family(session: AsyncSession, family_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_user(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def of_user(session: AsyncSession, user_id: uuid.UUID) -> Sequence[RefreshToken]:
    statement = select(RefreshToken).where(RefreshToken.user_id == user_id).order_by(RefreshToken.created_at)
    return (await session.scalars(statement)).all()
