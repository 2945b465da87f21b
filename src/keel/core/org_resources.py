"""The life cycle every org-owned resource shares, written once, over its repository.

Create (member+), read (viewer+), list newest-first with signed cursors,
update with optional If-Match, soft delete, restore (admin+), and an outbox
event for every change. A domain's service configures one
:class:`OrgResources` with its repository and adds only what is particular
to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import Conflict, NotFound
from keel.core.inserts import RowToInsert, insert_rows
from keel.core.outbox import event_row, note_written
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.core.repository import OrgRepository
from keel.core.versioning import check_version, flush_versioned, soft_delete

ModelT = TypeVar("ModelT")
ReadT = TypeVar("ReadT")
NEWEST_FIRST = "-created_at"


class OrgResources(Generic[ModelT, ReadT]):
    def __init__(
        self,
        repository: type[OrgRepository[ModelT]],
        read: Callable[[Any], ReadT],
        *,
        event_prefix: str,
        noun: str,
        event_fields: Sequence[str] = (),
    ) -> None:
        self.repository = repository
        self.read = read
        self.event_prefix = event_prefix
        self.noun = noun
        self.event_fields = event_fields

    # -- queries ---------------------------------------------------------
    async def find(
        self, session: AsyncSession, scope: OrgScope, row_id: uuid.UUID, *, deleted: bool = False
    ) -> ModelT | None:
        return await self.repository(session, scope).get(row_id, deleted=deleted)

    async def load(self, session: AsyncSession, scope: OrgScope, row_id: uuid.UUID) -> ModelT:
        row = await self.find(session, scope, row_id)
        if row is None:
            raise NotFound(f"{self.noun} not found.")
        return row

    async def page(
        self, session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
    ) -> tuple[list[ReadT], str | None]:
        repository = self.repository(session, scope)

        async def fetch(after: list[Any] | None) -> Sequence[Any]:
            return await repository.page_newest_first(after, limit)

        rows, next_cursor = await paged(codec, NEWEST_FIRST, cursor, limit, fetch, lambda row: [row.created_at, row.id])
        return [self.read(row) for row in rows], next_cursor

    # -- changes ---------------------------------------------------------
    async def _flush(self, session: AsyncSession) -> None:
        try:
            await flush_versioned(session)
        except IntegrityError:  # a unique rule of the model (e.g. one bookmark per URL)
            raise self._conflict() from None

    def _conflict(self) -> Conflict:
        return Conflict(f"A {self.noun.lower()} with these values already exists.")

    def _event_row(self, scope: OrgScope, kind: str, row: Any) -> RowToInsert:
        payload = {"id": str(row.id), "version": row.version, **{f: getattr(row, f) for f in self.event_fields}}
        return event_row(f"{self.event_prefix}.{kind}", payload, org_id=scope.org_id)

    async def event(self, session: AsyncSession, scope: OrgScope, kind: str, row: Any) -> None:
        await insert_rows(session, self._event_row(scope, kind, row))
        note_written(session)

    async def create(self, session: AsyncSession, scope: OrgScope, values: dict[str, Any]) -> ReadT:
        """Insert a row and its event: Core INSERTs with every value known up
        front (the columns' defaults evaluated before them), not a
        unit-of-work flush. The row is read back from those values, without
        a query."""
        scope.require(Role.MEMBER)
        repository = self.repository(session, scope)
        row_values = repository.new_row({"created_by_id": scope.principal.user_id, **values})
        # The row as written, with the model's attribute access: reads and
        # events only read attributes, and building an ORM instance (with
        # its instrumentation) just to read it back cost more than the INSERT.
        row: Any = SimpleNamespace(**row_values)
        try:
            await repository.insert(row_values, self._event_row(scope, "created", row))
        except IntegrityError:  # a unique rule of the model (e.g. one bookmark per URL)
            raise self._conflict() from None
        note_written(session)
        return self.read(row)

    async def update(
        self,
        session: AsyncSession,
        scope: OrgScope,
        row_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        expected: int | None,
    ) -> ReadT:
        scope.require(Role.MEMBER)
        row: Any = await self.load(session, scope, row_id)
        check_version(row.version, expected)
        for name, value in changes.items():
            setattr(row, name, value)
        await self._flush(session)
        await self.event(session, scope, "updated", row)
        return self.read(row)

    async def delete(self, session: AsyncSession, scope: OrgScope, row_id: uuid.UUID, *, expected: int | None) -> None:
        scope.require(Role.MEMBER)
        row = await self.load(session, scope, row_id)
        await soft_delete(session, row, expected)
        await self.event(session, scope, "deleted", row)

    async def restore(self, session: AsyncSession, scope: OrgScope, row_id: uuid.UUID) -> ReadT:
        scope.require(Role.ADMIN)
        row = await self.find(session, scope, row_id, deleted=True)
        if row is None:
            raise NotFound(f"No deleted {self.noun.lower()} with that id.")
        row.deleted_at = None  # type: ignore[attr-defined]
        await self._flush(session)  # a live twin may now violate a unique rule
        await self.event(session, scope, "restored", row)
        return self.read(row)
