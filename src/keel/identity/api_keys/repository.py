from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import execute_core
from keel.core.pagination import KeysetQuery
from keel.core.principal import OrgScope, scoped_template
from keel.identity.api_keys.models import ApiKey
from keel.identity.orgs.models import Organization


async def active_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    statement = (
        select(ApiKey)
        .join(Organization, Organization.id == ApiKey.org_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None), Organization.deleted_at.is_(None))
    )
    return (await session.scalars(statement)).first()


_PAGE = KeysetQuery.of(
    scoped_template(select(ApiKey), ApiKey).where(ApiKey.revoked_at.is_(None)),
    [ApiKey.created_at, ApiKey.id],
    descending=False,
)


async def page(session: AsyncSession, scope: OrgScope, *, after: Sequence[Any] | None, limit: int) -> Sequence[ApiKey]:
    statement, params = _PAGE.page(after, limit)
    return (await session.scalars(statement, scope.params(**params))).all()


async def one_in_org(session: AsyncSession, scope: OrgScope, key_id: uuid.UUID) -> ApiKey | None:
    statement = scope.scoped(select(ApiKey), ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    return (await session.scalars(statement)).first()


async def created_by(session: AsyncSession, user_id: uuid.UUID) -> Sequence[ApiKey]:
    statement = select(ApiKey).where(ApiKey.created_by_id == user_id).order_by(ApiKey.created_at)
    return (await session.scalars(statement)).all()


async def revoke_created_by(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(ApiKey).where(ApiKey.created_by_id == user_id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )


async def touch_used(session: AsyncSession, key_ids: Sequence[uuid.UUID], at: datetime, stale_before: datetime) -> None:
    """Written past the ORM: a stamp is not a change of access (see keel.identity.access_cache)."""
    await execute_core(
        session,
        update(ApiKey)
        .where(ApiKey.id.in_(key_ids), or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before))
        .values(last_used_at=at),
    )
