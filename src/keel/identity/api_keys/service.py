"""API keys: ``keel_`` + 32 random bytes, shown once, stored as a hash."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.errors import Forbidden, NotFound
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import API_KEY_PREFIX, OrgScope, Role
from keel.core.request_info import RequestInfo
from keel.core.security import hash_secret, new_secret
from keel.identity.api_keys import repository
from keel.identity.api_keys.models import ApiKey
from keel.identity.api_keys.schemas import ApiKeyCreated, ApiKeyRead
from keel.identity.audit.service import record

_DISPLAY_PREFIX_LENGTH = 12


async def create_key(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, name: str, role: Role
) -> ApiKeyCreated:
    scope.require(Role.ADMIN)
    if role.rank > scope.role.rank:
        raise Forbidden(f"You cannot create a key with the {role.value} role.")
    secret = new_secret(API_KEY_PREFIX)
    key = ApiKey(
        org_id=scope.org_id,
        name=name,
        role=role.value,
        display_prefix=secret[:_DISPLAY_PREFIX_LENGTH],
        key_hash=hash_secret(secret),
        created_by_id=scope.principal.user_id,
    )
    session.add(key)
    await session.flush()
    record(
        session,
        origin,
        "api_key.created",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="api_key",
        target_id=key.id,
        details={"role": role.value, "name": name},
    )
    await session.flush()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)


async def list_keys(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[ApiKeyRead], str | None]:
    scope.require(Role.ADMIN)
    keys, next_cursor = await paged(
        codec,
        "created_at",
        cursor,
        limit,
        lambda after: repository.page(session, scope, after=after, limit=limit),
        lambda key: [key.created_at, key.id],
    )
    return [ApiKeyRead.model_validate(key) for key in keys], next_cursor


async def revoke_key(session: AsyncSession, scope: OrgScope, origin: RequestInfo, *, key_id: uuid.UUID) -> None:
    scope.require(Role.ADMIN)
    key = await repository.one_in_org(session, scope, key_id)
    if key is None:
        raise NotFound("API key not found.")
    key.revoked_at = now()
    record(
        session,
        origin,
        "api_key.revoked",
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="api_key",
        target_id=key.id,
    )
    await session.flush()
