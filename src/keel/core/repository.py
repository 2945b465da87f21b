"""Repositories: all SQL of one model, on the request's session.

Every sub-package's ``repository.py`` subclasses one of these. An
:class:`OrgRepository` serves one organization: every statement it runs
starts from :meth:`OrgRepository.scoped`, which adds ``org_id = :org`` and,
for a soft-deletable model, ``deleted_at IS NULL`` — the one place tenant
scoping happens, so no query can forget it. Reads that build no ORM objects
return rows addressed by name (``rows``), never by position.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Executable, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import rows_by_name
from keel.core.inserts import RowToInsert, insert_rows, with_defaults
from keel.core.pagination import KeysetQuery
from keel.core.principal import OrgScope, scoped_template

ModelT = TypeVar("ModelT")


class Repository(Generic[ModelT]):
    """The SQL of ``model`` (set by each subclass), on ``session``."""

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def table(cls) -> Table:
        table = cls.model.__table__
        assert isinstance(table, Table)
        return table

    async def one_or_none(self, statement: Select[Any]) -> ModelT | None:
        """The first ORM object the statement selects, or None."""
        found: ModelT | None = (await self.session.scalars(statement)).first()
        return found

    async def all(self, statement: Select[Any], params: Mapping[str, Any] | None = None) -> Sequence[ModelT]:
        found: Sequence[ModelT] = (await self.session.scalars(statement, params)).all()
        return found

    async def rows(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Core rows (no ORM objects) as dicts by column name: for hot reads."""
        return await rows_by_name(self.session, statement, params)

    def new_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A row of ``model``: ``values`` completed with its columns' defaults,
        so the row as written is known without reading it back."""
        return with_defaults(self.table(), values)

    async def insert(self, row: Mapping[str, Any], *with_rows: RowToInsert) -> None:
        """Write a :meth:`new_row`, and any rows that go with it (its outbox event)."""
        await insert_rows(self.session, (self.table(), row), *with_rows)


class OrgRepository(Repository[ModelT]):
    """The SQL of ``model`` within one organization (see the module)."""

    def __init__(self, session: AsyncSession, scope: OrgScope) -> None:
        super().__init__(session)
        self.scope = scope

    def scoped(self, statement: Select[Any] | None = None, *, include_deleted: bool = False) -> Select[Any]:
        """``statement`` (by default, the model's rows) within this organization."""
        base = statement if statement is not None else select(self.model)
        return self.scope.scoped(base, self.model, include_deleted=include_deleted)

    @classmethod
    def template(cls, statement: Select[Any], *, include_deleted: bool = False) -> Select[Any]:
        """``statement`` scoped with the organization left as a parameter, for a
        statement built once (run it with ``self.params(...)``)."""
        return scoped_template(statement, cls.model, include_deleted=include_deleted)

    def params(self, **params: Any) -> dict[str, Any]:
        """Parameters for a :meth:`template` statement, in this organization."""
        return self.scope.params(**params)

    async def get(self, row_id: uuid.UUID, *, deleted: bool = False) -> ModelT | None:
        """The live row with this id (``deleted``: the soft-deleted one), or None."""
        statement = self.scoped(include_deleted=deleted).where(self.model.id == row_id)
        if deleted:
            statement = statement.where(self.model.deleted_at.is_not(None))
        return await self.one_or_none(statement)

    @classmethod
    @functools.cache
    def newest_first(cls) -> KeysetQuery[Select[Any]]:
        """The live rows, newest first, paged by (created_at, id); built once per model."""
        return KeysetQuery.of(cls.template(select(cls.model)), [cls.model.created_at, cls.model.id], descending=True)

    async def page_newest_first(self, after: Sequence[Any] | None, limit: int) -> Sequence[ModelT]:
        """One page of :meth:`newest_first`: ``limit + 1`` rows at most."""
        statement, params = self.newest_first().page(after, limit)
        return await self.all(statement, self.params(**params))

    def new_row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """As :meth:`Repository.new_row`, in this organization."""
        return super().new_row({**values, "org_id": self.scope.org_id})
