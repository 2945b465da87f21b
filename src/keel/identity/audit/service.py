"""Audit trail: every membership, key, org, auth-security and deletion event."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Principal
from keel.core.request_info import RequestInfo
from keel.identity.audit import repository
from keel.identity.audit.models import AuditEvent

AUDIT_SORT = "-created_at"


def record(
    session: AsyncSession,
    origin: RequestInfo,
    action: str,
    *,
    actor: Principal | None = None,
    actor_user_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction (it commits with the change)."""
    repository.add(
        session,
        AuditEvent(
            org_id=org_id,
            actor_user_id=actor.user_id if actor else actor_user_id,
            actor_api_key_id=actor.api_key_id if actor else None,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            ip=origin.ip,
            user_agent=origin.user_agent,
            request_id=origin.request_id,
            details=details or {},
        ),
    )


async def list_events(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[AuditEvent], str | None]:
    return await paged(
        codec,
        AUDIT_SORT,
        cursor,
        limit,
        lambda after: repository.page(session, scope, after=after, limit=limit),
        lambda event: [event.created_at, event.id],
    )


async def events_by(session: AsyncSession, user_id: uuid.UUID) -> list[AuditEvent]:
    return list(await repository.for_actor(session, user_id))


async def anonymize_actor(session: AsyncSession, user_id: uuid.UUID) -> None:
    await repository.forget_actor_origin(session, user_id)
