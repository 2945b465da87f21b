"""Principals, roles and org scopes: plain values every layer may use.

Kept apart from ``keel.core.auth`` (the FastAPI dependencies) so services and
repositories can use them without importing the web framework.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam

from keel.core.errors import Forbidden

API_KEY_PREFIX = "keel_"
_SCOPE_ORG_PARAM = "keel_scope_org_id"
StatementT = TypeVar("StatementT", bound=Select)  # type: ignore[type-arg]


class Role(StrEnum):
    """Roles in an organization, strongest first."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, minimum: Role) -> bool:
        return self.rank >= minimum.rank


_RANKS = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, or an API key acting in one org."""

    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    key_org_id: uuid.UUID | None = None
    key_role: Role | None = None
    token_jti: str | None = None

    @property
    def is_user(self) -> bool:
        return self.user_id is not None and self.api_key_id is None

    @property
    def subject(self) -> str:
        """A stable rate-limit and log key; never the credential itself."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class OrgScope:
    """The org a request acts in and the caller's role there.

    Every tenant query goes through :meth:`scoped`, which adds the org filter
    (and hides soft-deleted rows), so scoping is never left to memory.
    """

    org_id: uuid.UUID
    role: Role
    principal: Principal

    def scoped(self, statement: StatementT, model: Any, *, include_deleted: bool = False) -> StatementT:
        return _scope(statement, model, self.org_id, include_deleted=include_deleted)

    def params(self, **params: Any) -> dict[str, Any]:
        """Parameters for a :func:`scoped_template` statement, in this scope."""
        return {_SCOPE_ORG_PARAM: self.org_id, **params}

    def require(self, minimum: Role) -> None:
        if not self.role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or stronger in the organization.")


def _scope(statement: StatementT, model: Any, org_id: Any, *, include_deleted: bool) -> StatementT:
    statement = statement.where(model.org_id == org_id)
    if not include_deleted and hasattr(model, "deleted_at"):
        statement = statement.where(model.deleted_at.is_(None))
    return statement


def scoped_template(statement: StatementT, model: Any, *, include_deleted: bool = False) -> StatementT:
    """A statement built once, at import, for a hot path, with the org left as a
    parameter: execute it with ``scope.params(...)``. Executing it without
    them fails (a missing bound value), never returns another org's rows.
    Building a statement costs more than running a primary-key read; this
    pays that once."""
    return _scope(statement, model, bindparam(_SCOPE_ORG_PARAM, required=True), include_deleted=include_deleted)
