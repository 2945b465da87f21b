"""Optimistic concurrency: ETags out, If-Match in, stale writes refused with 412."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Index, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from keel.core.clock import now
from keel.core.errors import BadRequest, PreconditionFailed


class VersionedMixin:
    """A version counter SQLAlchemy bumps on every UPDATE and checks in its WHERE,
    so two writers that read the same version cannot both succeed."""

    version: Mapped[int] = mapped_column(default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


# An ETag keel issued ("v3", weak or strong); the OpenAPI document declares the same.
ETAG_PATTERN = re.compile(r'(?:W/)?"v([0-9]{1,18})"')
IF_MATCH_PATTERN = rf"^(\*|{ETAG_PATTERN.pattern})$"


def etag(version: int) -> str:
    return f'"v{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an If-Match header names; None when absent or ``*``."""
    if header is None or header.strip() == "*":
        return None
    found = ETAG_PATTERN.fullmatch(header.strip())
    if found is None:
        raise BadRequest('If-Match must be an ETag from this API, like "v3".')
    return int(found.group(1))


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed("The resource changed since you read it; fetch it again.")


async def flush_versioned(session: AsyncSession) -> None:
    """Flush; a row another writer changed meanwhile becomes a 412."""
    try:
        await session.flush()
    except StaleDataError:
        raise PreconditionFailed("The resource changed while you were writing; fetch it again.") from None


async def soft_delete(session: AsyncSession, row: Any, expected: int | None) -> None:
    check_version(row.version, expected)
    row.deleted_at = now()
    await flush_versioned(session)


def live_index(name: str, *columns: str) -> Index:
    """An index over the rows not soft-deleted (a partial index).

    Lists filter ``deleted_at IS NULL``; PostgreSQL does not treat that filter
    as fixing an indexed ``deleted_at`` column, so an index that includes the
    column cannot supply the sort order and every page sorts the whole org.
    A partial index can.
    """
    return Index(name, *columns, postgresql_where=text(_LIVE), sqlite_where=text(_LIVE))


_LIVE = "deleted_at IS NULL"
