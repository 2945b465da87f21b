"""Idempotent writes: the same ``Idempotency-Key`` and body within 24 h
returns the first response instead of acting twice.

The record is written in the same transaction as the write it describes, so
either both exist or neither does. A concurrent duplicate loses on the unique
key and is told to retry (409); its retry then gets the stored response.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Index, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.clock import now
from keel.core.errors import BadRequest, Conflict, ValidationFailed
from keel.core.models import Base, IdMixin

RETENTION = timedelta(hours=24)
MAX_KEY_LENGTH = 255
KEY_PATTERN = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")  # printable ASCII, as the OpenAPI document declares


class IdempotencyRecord(IdMixin, Base):
    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (
        UniqueConstraint("owner", "key"),
        # Retention deletes by age.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )


class StoredResponse(BaseModel):
    status_code: int
    body: str
    replayed: bool = False


def request_fingerprint(method: str, path: str, body: BaseModel) -> str:
    return hashlib.sha256(f"{method} {path}\n{body.model_dump_json()}".encode()).hexdigest()


async def run_once(
    session: AsyncSession,
    *,
    owner: str,
    key: str | None,
    fingerprint: Callable[[], str],
    status_code: int,
    action: Callable[[], Awaitable[BaseModel]],
) -> StoredResponse:
    """Run ``action`` unless ``owner`` already ran it under ``key``; return the response.

    ``fingerprint`` identifies the request's content; it is worked out only
    when there is a key to hold it against.
    """
    if key is None:
        return StoredResponse(status_code=status_code, body=(await action()).model_dump_json())
    if not KEY_PATTERN.fullmatch(key):
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")
    previous = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at > now() - RETENTION,
        )
    )
    request_hash = fingerprint()
    if previous is not None:
        if previous.request_hash != request_hash:
            raise ValidationFailed("This Idempotency-Key was used with a different request.")
        return StoredResponse(status_code=previous.status_code, body=previous.response_body, replayed=True)
    body = (await action()).model_dump_json()
    # An expired record with the same key makes way for the new one.
    stale = await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)
    )
    if stale is not None:
        await session.delete(stale)
        await session.flush()
    session.add(
        IdempotencyRecord(owner=owner, key=key, request_hash=request_hash, status_code=status_code, response_body=body)
    )
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("A request with this Idempotency-Key is in progress; retry shortly.") from None
    return StoredResponse(status_code=status_code, body=body)


async def purge_expired(session: AsyncSession, *, limit: int) -> int:
    """Delete up to ``limit`` records past their retention; how many."""
    expired = select(IdempotencyRecord.id).where(IdempotencyRecord.created_at <= now() - RETENTION).limit(limit)
    purged = await session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.id.in_(expired.scalar_subquery()))
        .returning(IdempotencyRecord.id)
    )
    return len(purged.all())
