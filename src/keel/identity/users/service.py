"""Accounts: registration, login, profile, export and deletion (GDPR)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.errors import Conflict, Forbidden, Unauthorized
from keel.core.logging import get_logger
from keel.core.outbox import emit
from keel.core.personal_data import PersonalDataSource
from keel.core.principal import Principal, Role
from keel.core.request_info import RequestInfo
from keel.core.security import PasswordHasher
from keel.identity.api_keys import repository as api_keys
from keel.identity.audit import service as audit
from keel.identity.orgs import repository as orgs
from keel.identity.orgs import service as org_service
from keel.identity.tokens import repository as tokens
from keel.identity.tokens import service as token_service
from keel.identity.users import repository
from keel.identity.users.models import User
from keel.identity.users.policy import check_password, check_registration, normalize_email
from keel.identity.users.schemas import AccountExport, MembershipSummary, MeRead, MeUpdate, UserRead

_log = get_logger("keel.identity")
_BAD_CREDENTIALS = "Invalid email or password."


async def register(
    session: AsyncSession, hasher: PasswordHasher, origin: RequestInfo, *, email: str, password: str, name: str
) -> User:
    """A new user owning a new personal organization. 409 if the email is taken."""
    email, email_normalized = check_registration(email, password)
    # Hash before looking the email up, so "taken" costs as long as success.
    password_hash = await hasher.hash(password)
    if await repository.email_taken(session, email_normalized):
        raise Conflict("An account with that email address already exists.")
    user = User(email=email, email_normalized=email_normalized, name=name, password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent registration won the race
        raise Conflict("An account with that email address already exists.") from None
    principal = Principal(user_id=user.id)
    audit.record(session, origin, "user.registered", actor=principal, target_type="user", target_id=user.id)
    await org_service.create_org(session, principal, origin, name=f"{name}'s workspace", personal=True)
    return user


async def verify_credentials(
    session: AsyncSession, hasher: PasswordHasher, origin: RequestInfo, *, email: str, password: str
) -> User:
    """The user these credentials belong to; one generic 401 otherwise."""
    try:
        _, email_normalized = normalize_email(email)
    except Exception:  # a malformed email is just a wrong credential here
        email_normalized = ""
    user = await repository.by_email(session, email_normalized) if email_normalized else None
    matches, new_hash = await hasher.verify(password, user.password_hash if user else None)
    if user is None or not matches:
        _log.info("auth.login_failed", known_account=user is not None, ip=origin.ip)
        if user is not None:
            audit.record(
                session, origin, "auth.login_failed", actor_user_id=user.id, target_type="user", target_id=user.id
            )
            await session.flush()
        raise Unauthorized(_BAD_CREDENTIALS, keep_changes=True)
    if new_hash is not None:  # hashing parameters changed since this hash was made
        user.password_hash = new_hash
    audit.record(session, origin, "auth.login", actor_user_id=user.id, target_type="user", target_id=user.id)
    await session.flush()
    return user


async def _memberships(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipSummary]:
    return [
        MembershipSummary(
            org_id=row.org.id, org_name=row.org.name, role=Role(row.membership.role), personal=row.org.personal
        )
        for row in await orgs.memberships_of(session, user_id)
    ]


async def _user(session: AsyncSession, principal: Principal) -> User:
    if principal.user_id is None:
        raise Forbidden("This route needs a user's access token, not an API key.")
    user = await repository.active(session, principal.user_id)
    if user is None:
        raise Unauthorized("Invalid or revoked credential.")
    return user


async def me(session: AsyncSession, principal: Principal) -> MeRead:
    user = await _user(session, principal)
    return MeRead(**UserRead.model_validate(user).model_dump(), memberships=await _memberships(session, user.id))


async def update_me(
    session: AsyncSession, hasher: PasswordHasher, principal: Principal, origin: RequestInfo, *, changes: MeUpdate
) -> MeRead:
    user = await _user(session, principal)
    if changes.name is not None:
        user.name = changes.name
    if changes.password is not None:
        matches, _ = await hasher.verify(changes.current_password or "", user.password_hash)
        if not matches:
            raise Forbidden("The current password is wrong.")
        check_password(changes.password, user.email)
        user.password_hash = await hasher.hash(changes.password)
        # Other sessions end with the old password.
        await token_service.revoke_all(session, user.id)
        audit.record(session, origin, "auth.password_changed", actor=principal, target_type="user", target_id=user.id)
    await session.flush()
    return await me(session, principal)


async def export(
    session: AsyncSession, principal: Principal, elsewhere: Sequence[PersonalDataSource] = ()
) -> AccountExport:
    """Identity's rows about the caller, and each other domain's (``elsewhere``)."""
    user = await _user(session, principal)
    return AccountExport(
        user=UserRead.model_validate(user),
        memberships=await _memberships(session, user.id),
        sessions=[
            {
                "family_id": str(t.family_id),
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "used_at": t.used_at,
                "revoked_at": t.revoked_at,
            }
            for t in await tokens.of_user(session, user.id)
        ],
        api_keys_created=[
            {
                "id": str(k.id),
                "org_id": str(k.org_id),
                "name": k.name,
                "role": k.role,
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
                "revoked_at": k.revoked_at,
            }
            for k in await api_keys.created_by(session, user.id)
        ],
        audit_events=[_audit_row(event) for event in await audit.events_by(session, user.id)],
        domains={source.name: await source.export(session, user.id) for source in elsewhere},
    )


def _audit_row(event: Any) -> dict[str, Any]:
    return {
        "action": event.action,
        "org_id": str(event.org_id) if event.org_id else None,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "created_at": event.created_at,
    }


async def delete_account(session: AsyncSession, principal: Principal, origin: RequestInfo) -> None:
    """Revoke everything, leave every org, anonymize the person; audit rows stay.

    Refused (409) while the user is the only owner of an org with other
    members: they must hand the org over first. Orgs they alone belong to are
    deleted with them. The user row is locked first, so a request of theirs
    still in flight either finishes before (and its rows are cleaned up here)
    or sees the account gone.
    """
    if principal.user_id is None:
        raise Forbidden("This route needs a user's access token, not an API key.")
    user = await repository.lock_for_deletion(session, principal.user_id)
    if user is None:
        raise Unauthorized("Invalid or revoked credential.")
    moment = now()
    for row in await orgs.memberships_of(session, user.id):
        org = row.org
        if row.membership.role != Role.OWNER.value:
            continue
        other_owners = [owner for owner in await orgs.owner_ids(session, org.id) if owner != user.id]
        if other_owners:
            continue
        if await orgs.count_members(session, org.id) > 1:
            raise Conflict(f"You are the only owner of '{org.name}', which has other members: transfer it first.")
        org.deleted_at = moment
        audit.record(
            session, origin, "org.deleted", actor=principal, org_id=org.id, target_type="org", target_id=org.id
        )
    for row in await orgs.memberships_of(session, user.id):
        await emit(session, "member.removed", {"user_id": str(user.id)}, org_id=row.org.id)
    await orgs.remove_memberships_of(session, user.id)
    await tokens.revoke_user(session, user.id, moment)
    await api_keys.revoke_created_by(session, user.id, moment)
    await audit.anonymize_actor(session, user.id)
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.email_normalized = user.email
    user.name = "Deleted user"
    user.password_hash = None
    user.last_active_at = None
    user.deleted_at = moment
    # Other domains let go of what was the person's (realtime: their devices and live sessions).
    await emit(session, "user.deleted", {"user_id": str(user.id)})
    audit.record(
        session,
        RequestInfo(request_id=origin.request_id),
        "user.deleted",
        actor=principal,
        target_type="user",
        target_id=user.id,
    )
    await session.flush()


async def active_among(session: AsyncSession, user_ids: Sequence[uuid.UUID], *, stamp_every_s: float) -> set[uuid.UUID]:
    """Which of these users may still act, key-share-locked for the rest of the
    transaction (an account deletion waits for it, as for a write request),
    their ``last_active_at`` stamped at most once per ``stamp_every_s`` each
    (users stamped more recently cost no write at all)."""
    found = await repository.active_among(session, user_ids, lock=True)
    moment = now()
    stale_before = moment - timedelta(seconds=stamp_every_s)
    due = sorted(user_id for user_id, last in found.items() if last is None or last < stale_before)
    if due:
        await repository.touch_activity(session, due, moment, stale_before)
    return set(found)
