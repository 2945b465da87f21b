"""Organizations and memberships, with the role rules of the API contract.

viewer reads; member writes work items; admin manages members and keys;
owner deletes the org and transfers ownership. Nobody grants a role stronger
than their own, admins cannot touch owners, and an org always keeps an owner.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.errors import Conflict, Forbidden, NotFound
from keel.core.outbox import emit
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Principal, Role
from keel.core.request_info import RequestInfo
from keel.identity.audit.service import record
from keel.identity.orgs import repository
from keel.identity.orgs.models import Membership, Organization
from keel.identity.orgs.schemas import MemberRead, OrgRead
from keel.identity.users import repository as users
from keel.identity.users.models import User
from keel.identity.users.policy import normalize_email


def _org_read(org: Organization, role: Role) -> OrgRead:
    return OrgRead(id=org.id, name=org.name, personal=org.personal, created_at=org.created_at, role=role)


async def create_org(
    session: AsyncSession, principal: Principal, origin: RequestInfo, *, name: str, personal: bool = False
) -> OrgRead:
    if principal.user_id is None:
        raise Forbidden("Only users create organizations.")
    org = Organization(name=name, personal=personal)
    session.add(org)
    await session.flush()
    session.add(Membership(org_id=org.id, user_id=principal.user_id, role=Role.OWNER.value))
    record(session, origin, "org.created", actor=principal, org_id=org.id, target_type="org", target_id=org.id)
    await session.flush()
    return _org_read(org, Role.OWNER)


async def list_orgs(
    session: AsyncSession, principal: Principal, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[OrgRead], str | None]:
    if principal.user_id is None:  # an API key sees the one org it belongs to
        if principal.key_org_id is None or principal.key_role is None or cursor:
            return [], None
        org = await repository.org(session, principal.key_org_id)
        return ([_org_read(org, principal.key_role)] if org else []), None
    user_id = principal.user_id
    rows, next_cursor = await paged(
        codec,
        "created_at",
        cursor,
        limit,
        lambda after: repository.orgs_page(session, user_id, after=after, limit=limit),
        lambda row: [row.org.created_at, row.org.id],
    )
    return [_org_read(row.org, Role(row.membership.role)) for row in rows], next_cursor


async def get_org(session: AsyncSession, scope: OrgScope) -> OrgRead:
    org = await repository.org(session, scope.org_id)
    if org is None:
        raise NotFound("Organization not found.")
    return _org_read(org, scope.role)


async def rename_org(session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, name: str) -> OrgRead:
    scope.require(Role.ADMIN)
    org = await repository.org(session, scope.org_id)
    if org is None:
        raise NotFound("Organization not found.")
    org.name = name
    record(session, origin, "org.updated", actor=scope.principal, org_id=org.id, target_type="org", target_id=org.id)
    await session.flush()
    return _org_read(org, scope.role)


async def delete_org(session: AsyncSession, scope: OrgScope, origin: RequestInfo) -> None:
    scope.require(Role.OWNER)
    org = await repository.org(session, scope.org_id)
    if org is None:
        raise NotFound("Organization not found.")
    org.deleted_at = now()
    record(session, origin, "org.deleted", actor=scope.principal, org_id=org.id, target_type="org", target_id=org.id)
    await session.flush()


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=Role(membership.role),
        joined_at=membership.created_at,
        last_active_at=user.last_active_at,
    )


async def list_members(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[MemberRead], str | None]:
    rows, next_cursor = await paged(
        codec,
        "joined_at",
        cursor,
        limit,
        lambda after: repository.members_page(session, scope.org_id, after=after, limit=limit),
        lambda row: [row.membership.created_at, row.membership.user_id],
    )
    return [_member(row.membership, row.user) for row in rows], next_cursor


def _check_grant(scope: OrgScope, role: Role) -> None:
    """Nobody grants a role stronger than their own; only owners grant owner."""
    if role.rank > scope.role.rank:
        raise Forbidden(f"You cannot grant the {role.value} role.")


async def _member_read(session: AsyncSession, scope: OrgScope, user_id: uuid.UUID) -> MemberRead:
    found = await repository.member(session, scope.org_id, user_id)
    if found is None:
        raise NotFound("Member not found.")
    return _member(found.membership, found.user)


async def add_member(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, email: str, role: Role
) -> MemberRead:
    scope.require(Role.ADMIN)
    _check_grant(scope, role)
    _, email_normalized = normalize_email(email)
    user = await users.by_email(session, email_normalized)
    if user is None:
        raise NotFound("No user with that email address.")
    if await repository.membership(session, scope.org_id, user.id) is not None:
        raise Conflict("That user is already a member.")
    session.add(Membership(org_id=scope.org_id, user_id=user.id, role=role.value))
    record(
        session,
        origin,
        "member.added",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="user",
        target_id=user.id,
        details={"role": role.value},
    )
    await emit(session, "member.added", {"user_id": str(user.id), "role": role.value}, org_id=scope.org_id)
    await session.flush()
    return await _member_read(session, scope, user.id)


async def _ensure_another_owner_remains(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    if [owner for owner in await repository.owner_ids(session, org_id) if owner != user_id] == []:
        raise Conflict("An organization needs an owner: make someone else owner first.")


async def change_role(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, user_id: uuid.UUID, role: Role
) -> MemberRead:
    scope.require(Role.ADMIN)
    membership = await repository.membership(session, scope.org_id, user_id)
    if membership is None:
        raise NotFound("Member not found.")
    current = Role(membership.role)
    if current.rank > scope.role.rank:
        raise Forbidden("You cannot change the role of someone stronger than you.")
    _check_grant(scope, role)
    if current is Role.OWNER and role is not Role.OWNER:
        await _ensure_another_owner_remains(session, scope.org_id, user_id)
    membership.role = role.value
    record(
        session,
        origin,
        "member.role_changed",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="user",
        target_id=user_id,
        details={"from": current.value, "to": role.value},
    )
    await emit(session, "member.updated", {"user_id": str(user_id), "role": role.value}, org_id=scope.org_id)
    await session.flush()
    return await _member_read(session, scope, user_id)


async def remove_member(session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, user_id: uuid.UUID) -> None:
    leaving_self = scope.principal.user_id == user_id
    if not leaving_self:
        scope.require(Role.ADMIN)
    membership = await repository.membership(session, scope.org_id, user_id)
    if membership is None:
        raise NotFound("Member not found.")
    role = Role(membership.role)
    if not leaving_self and role.rank > scope.role.rank:
        raise Forbidden("You cannot remove someone stronger than you.")
    if role is Role.OWNER:
        await _ensure_another_owner_remains(session, scope.org_id, user_id)
    await session.delete(membership)
    record(
        session,
        origin,
        "member.left" if leaving_self else "member.removed",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="user",
        target_id=user_id,
    )
    await emit(session, "member.removed", {"user_id": str(user_id)}, org_id=scope.org_id)
    await session.flush()


async def transfer_ownership(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, user_id: uuid.UUID
) -> MemberRead:
    """The target becomes owner; the caller steps down to admin."""
    scope.require(Role.OWNER)
    caller = scope.principal.user_id
    if caller is None:
        raise Forbidden("Ownership is transferred by a user, not an API key.")
    if caller == user_id:
        raise Conflict("You already own this organization.")
    target = await repository.membership(session, scope.org_id, user_id)
    own = await repository.membership(session, scope.org_id, caller)
    if target is None or own is None:
        raise NotFound("Member not found.")
    target.role = Role.OWNER.value
    own.role = Role.ADMIN.value
    record(
        session,
        origin,
        "org.ownership_transferred",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="user",
        target_id=user_id,
    )
    await emit(session, "member.updated", {"user_id": str(user_id), "role": "owner"}, org_id=scope.org_id)
    await session.flush()
    return await _member_read(session, scope, user_id)


async def member_name(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The name of ``user_id`` if they belong to the (live) org, else None: for other domains' checks."""
    return await repository.member_name(session, org_id, user_id)


async def recently_active_members(
    session: AsyncSession, org_id: uuid.UUID, since: datetime
) -> list[repository.ActiveMember]:
    """Members seen since ``since``, most recent first (the cutoff is applied in SQL)."""
    return await repository.active_members(session, org_id, since)


async def member_names(session: AsyncSession, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Every member of the org by id, with their name: for other domains' views of the org."""
    return await repository.member_names(session, org_id)


async def personal_org_id(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    """The user's personal org (theirs alone): where events about their own things go."""
    return await repository.personal_org_id(session, user_id)
