from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import execute_core, first_row
from keel.core.pagination import KeysetQuery
from keel.identity.orgs.models import Membership, Organization
from keel.identity.users.models import User


def _of_live_membership(*columns: Any) -> Select[Any]:
    """``columns`` of the membership of :user_id in :org_id, if that org is live:
    the one rule of who is a member, for every lookup below."""
    return (
        select(*columns)
        .select_from(Membership)
        .join(Organization, Organization.id == Membership.org_id)
        .where(
            Membership.user_id == bindparam("user_id"),
            Membership.org_id == bindparam("org_id"),
            Organization.deleted_at.is_(None),
        )
    )


# Run on every org-scoped request: built once.
_ROLE_OF = _of_live_membership(Membership.role)
_MEMBER_NAME = _of_live_membership(User.name).join(User, User.id == Membership.user_id)

# The user's row and role in one statement: for a read that knows neither,
# and for writes, locked as users.last_seen locks it (KEY SHARE: an account
# deletion waits, the request's own "last seen" stamp does not).
_USER_AND_ROLE = select(User.last_active_at, _ROLE_OF.scalar_subquery().label("role")).where(
    User.id == bindparam("user_id"), User.deleted_at.is_(None)
)
_USER_AND_ROLE_LOCKED = _USER_AND_ROLE.with_for_update(read=True, key_share=True, of=User)


async def user_and_role(
    session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID, *, lock: bool
) -> tuple[bool, datetime | None, str | None]:
    """(is the user active, when last seen, their role in ``org_id`` or None)."""
    statement = _USER_AND_ROLE_LOCKED if lock else _USER_AND_ROLE
    row = await first_row(session, statement, {"user_id": user_id, "org_id": org_id})
    if row is None:
        return False, None, None
    return True, row.last_active_at, row.role


async def member_name(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    name: str | None = (await execute_core(session, _MEMBER_NAME, {"user_id": user_id, "org_id": org_id})).scalar()
    return name


async def role_of(session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID) -> str | None:
    row = await first_row(session, _ROLE_OF, {"user_id": user_id, "org_id": org_id})
    return None if row is None else cast(str, row.role)


@dataclass(frozen=True, slots=True)
class OrgMembership:
    """A membership with its organization."""

    membership: Membership
    org: Organization


@dataclass(frozen=True, slots=True)
class Member:
    """A membership with its user."""

    membership: Membership
    user: User


async def memberships_of(session: AsyncSession, user_id: uuid.UUID) -> list[OrgMembership]:
    statement = (
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.org_id)
        .where(Membership.user_id == user_id, Organization.deleted_at.is_(None))
        .order_by(Organization.created_at, Organization.id)
    )
    return [OrgMembership(m, o) for m, o in (await session.execute(statement)).all()]


async def org(session: AsyncSession, org_id: uuid.UUID) -> Organization | None:
    statement = select(Organization).where(Organization.id == org_id, Organization.deleted_at.is_(None))
    return (await session.scalars(statement)).first()


_MEMBERS_PAGE = KeysetQuery.of(
    select(Membership, User)
    .join(User, User.id == Membership.user_id)
    .where(Membership.org_id == bindparam("org_id", required=True)),
    [Membership.created_at, Membership.user_id],
    descending=False,
)


async def members_page(
    session: AsyncSession, org_id: uuid.UUID, *, after: Sequence[Any] | None, limit: int
) -> list[Member]:
    statement, params = _MEMBERS_PAGE.page(after, limit)
    return [Member(m, u) for m, u in (await session.execute(statement, {"org_id": org_id, **params})).all()]


async def member(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
    statement = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    row = (await session.execute(statement)).first()
    return Member(row[0], row[1]) if row else None


_ORGS_PAGE = KeysetQuery.of(
    select(Membership, Organization)
    .join(Organization, Organization.id == Membership.org_id)
    .where(Membership.user_id == bindparam("user_id", required=True), Organization.deleted_at.is_(None)),
    [Organization.created_at, Organization.id],
    descending=False,
)


async def orgs_page(
    session: AsyncSession, user_id: uuid.UUID, *, after: Sequence[Any] | None, limit: int
) -> list[OrgMembership]:
    statement, params = _ORGS_PAGE.page(after, limit)
    return [OrgMembership(m, o) for m, o in (await session.execute(statement, {"user_id": user_id, **params})).all()]


async def membership(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    return await session.get(Membership, (org_id, user_id), with_for_update=True)


async def count_members(session: AsyncSession, org_id: uuid.UUID) -> int:
    statement = select(func.count()).select_from(Membership).where(Membership.org_id == org_id)
    return int(await session.scalar(statement) or 0)


async def remove_memberships_of(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(Membership).where(Membership.user_id == user_id))


async def owner_ids(session: AsyncSession, org_id: uuid.UUID) -> list[uuid.UUID]:
    """The org's owners, locked: two concurrent demotions cannot both pass the last-owner check."""
    statement = (
        select(Membership.user_id).where(Membership.org_id == org_id, Membership.role == "owner").with_for_update()
    )
    return list((await session.scalars(statement)).all())


@dataclass(frozen=True, slots=True)
class ActiveMember:
    user_id: uuid.UUID
    name: str
    last_active_at: datetime


async def active_members(session: AsyncSession, org_id: uuid.UUID, since: datetime) -> list[ActiveMember]:
    statement = (
        select(User.id, User.name, User.last_active_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, User.last_active_at >= since, User.deleted_at.is_(None))
        .order_by(User.last_active_at.desc(), User.id)
    )
    return [ActiveMember(row.id, row.name, row.last_active_at) for row in await session.execute(statement)]


async def member_names(session: AsyncSession, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    statement = (
        select(User.id, User.name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, User.deleted_at.is_(None))
    )
    return {row.id: row.name for row in await session.execute(statement)}


async def personal_org_id(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    statement = (
        select(Organization.id)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user_id, Organization.personal.is_(True), Organization.deleted_at.is_(None))
        .limit(1)
    )
    found: uuid.UUID | None = await session.scalar(statement)
    return found
