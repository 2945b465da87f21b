"""Login sessions: short JWT access tokens and rotating refresh tokens.

Refresh tokens form a family per login. Each refresh rotates: the presented
token is spent and its successor issued. A spent token presented again means
it was copied, so the whole family is revoked and the event audited — except
within a short grace after rotation, where two tabs racing to refresh both get
the same successor instead of being logged out. The successor's secret is
derived from the spent one (HMAC with the server key), so it can be handed
out again without ever being stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import AuthSettings
from keel.core.clock import now
from keel.core.errors import Unauthorized
from keel.core.request_info import RequestInfo
from keel.core.security import TokenSigner, derive_secret, hash_secret, new_secret
from keel.identity.audit.service import record
from keel.identity.tokens import repository
from keel.identity.tokens.models import RefreshToken
from keel.identity.tokens.schemas import TokenPairRead
from keel.identity.users import repository as users

_INVALID = "The refresh token is invalid or expired."


@dataclass(frozen=True)
class TokenIssuer:
    """Everything issuing tokens needs, built once per app."""

    signer: TokenSigner
    settings: AuthSettings
    derivation_key: SecretStr


def _pair(issuer: TokenIssuer, user_id: uuid.UUID, refresh_token: str) -> TokenPairRead:
    access = issuer.signer.issue(str(user_id))
    return TokenPairRead(
        access_token=access.token, refresh_token=refresh_token, expires_in=issuer.settings.access_token_ttl_s
    )


def _new_refresh(
    session: AsyncSession, issuer: TokenIssuer, user_id: uuid.UUID, family_id: uuid.UUID, secret: str
) -> RefreshToken:
    token = RefreshToken(
        user_id=user_id,
        family_id=family_id,
        token_hash=hash_secret(secret),
        expires_at=now() + timedelta(seconds=issuer.settings.refresh_token_ttl_s),
    )
    session.add(token)
    return token


async def start_session(session: AsyncSession, issuer: TokenIssuer, user_id: uuid.UUID) -> TokenPairRead:
    """A new login: a new token family."""
    secret = new_secret()
    _new_refresh(session, issuer, user_id, uuid.uuid4(), secret)
    await session.flush()
    return _pair(issuer, user_id, secret)


def _successor_secret(issuer: TokenIssuer, spent: str) -> str:
    return derive_secret(issuer.derivation_key, "refresh-successor", spent)


async def refresh(
    session: AsyncSession, issuer: TokenIssuer, origin: RequestInfo, *, refresh_token: str
) -> TokenPairRead:
    token = await repository.by_hash(session, hash_secret(refresh_token))
    moment = now()
    if token is None or token.revoked_at is not None or token.expires_at <= moment:
        raise Unauthorized(_INVALID)
    if await users.active(session, token.user_id) is None:
        raise Unauthorized(_INVALID)

    if token.used_at is None:
        token.used_at = moment
        successor = _new_refresh(
            session, issuer, token.user_id, token.family_id, _successor_secret(issuer, refresh_token)
        )
        await session.flush()
        token.replaced_by_id = successor.id
        await session.flush()
        return _pair(issuer, token.user_id, _successor_secret(issuer, refresh_token))

    previous_successor = await repository.get(session, token.replaced_by_id) if token.replaced_by_id else None
    within_grace = moment - token.used_at <= timedelta(seconds=issuer.settings.refresh_reuse_grace_s)
    if (
        within_grace
        and previous_successor is not None
        and previous_successor.used_at is None
        and previous_successor.revoked_at is None
    ):
        return _pair(issuer, token.user_id, _successor_secret(issuer, refresh_token))

    await repository.revoke_family(session, token.family_id, moment)
    record(
        session,
        origin,
        "auth.refresh_reuse_detected",
        actor_user_id=token.user_id,
        target_type="token_family",
        target_id=token.family_id,
    )
    await session.flush()
    raise Unauthorized(_INVALID, keep_changes=True)


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    """Revoke the session the token belongs to; unknown tokens are ignored (idempotent)."""
    token = await repository.by_hash(session, hash_secret(refresh_token))
    if token is not None:
        await repository.revoke_family(session, token.family_id, now())
        await session.flush()


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> None:
    await repository.revoke_user(session, user_id, now())
