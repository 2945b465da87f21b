"""Who is calling, and what they may do in an organization.

``authenticate`` turns a bearer credential (JWT access token or ``keel_`` API
key) into a :class:`Principal`; ``org_scope``/``require_role`` turn a principal
and an org id from the path into an :class:`OrgScope`. Looking credentials up
is the identity domain's job: it registers a :class:`PrincipalResolver` on the
app, so core never imports a domain.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request, Response
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import Forbidden, NotFound, Unauthorized
from keel.core.ratelimit import enforce_rate_limit
from keel.core.security import InvalidToken, TokenSigner
from keel.core.transactions import DbSession, is_write_request

API_KEY_PREFIX = "keel_"


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


class PrincipalResolver(Protocol):
    """Implemented by the identity domain; looks credentials up in the database."""

    async def user_principal(self, session: AsyncSession, user_id: uuid.UUID, *, write: bool) -> Principal | None: ...

    async def api_key_principal(self, session: AsyncSession, api_key: str, *, write: bool) -> Principal | None: ...

    async def role_in_org(self, session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Role | None: ...


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("Use the Bearer scheme.")
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key else None


async def authenticate(request: Request, response: Response, session: DbSession) -> Principal:
    """The calling principal; 401 for a missing, invalid or revoked credential.

    Also counts the request against the principal's default rate limit.
    """
    credential = _credential(request)
    if credential is None:
        raise Unauthorized("Authentication required.")
    resolver: PrincipalResolver = request.app.state.principal_resolver
    principal: Principal | None
    write = is_write_request(request)
    if credential.startswith(API_KEY_PREFIX):
        principal = await resolver.api_key_principal(session, credential, write=write)
    else:
        signer: TokenSigner = request.app.state.token_signer
        try:
            claims = signer.verify(credential)
            user_id = uuid.UUID(str(claims["sub"]))
        except (InvalidToken, ValueError):
            raise Unauthorized("Invalid or expired token.") from None
        principal = await resolver.user_principal(session, user_id, write=write)
        if principal is not None:
            principal = Principal(user_id=principal.user_id, token_jti=str(claims["jti"]))
    if principal is None:
        raise Unauthorized("Invalid or revoked credential.")
    await enforce_rate_limit(request, response, "default", principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def current_user(principal: CurrentPrincipal) -> Principal:
    """A principal that is a user (routes about "me" make no sense for a key)."""
    if not principal.is_user:
        raise Forbidden("This route needs a user's access token, not an API key.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]

ModelT = TypeVar("ModelT")


@dataclass(frozen=True, slots=True)
class OrgScope:
    """The org a request acts in and the caller's role there.

    Every tenant query goes through :meth:`scoped`, which adds the org filter
    (and hides soft-deleted rows), so scoping is never left to memory.
    """

    org_id: uuid.UUID
    role: Role
    principal: Principal

    def scoped(self, statement: Select[Any], model: Any, *, include_deleted: bool = False) -> Select[Any]:
        statement = statement.where(model.org_id == self.org_id)
        if not include_deleted and hasattr(model, "deleted_at"):
            statement = statement.where(model.deleted_at.is_(None))
        return statement

    def require(self, minimum: Role) -> None:
        if not self.role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or stronger in the organization.")


async def org_scope(org_id: uuid.UUID, request: Request, principal: CurrentPrincipal, session: DbSession) -> OrgScope:
    """The caller's scope in ``org_id``; 404 when they are not in it (existence never leaks)."""
    resolver: PrincipalResolver = request.app.state.principal_resolver
    role = await resolver.role_in_org(session, principal, org_id)
    if role is None:
        raise NotFound("Organization not found.")
    return OrgScope(org_id=org_id, role=role, principal=principal)


def require_role(minimum: Role) -> Callable[..., Awaitable[OrgScope]]:
    """A dependency: the org scope, or 403 when the caller's role is weaker than ``minimum``."""

    async def dependency(scope: Annotated[OrgScope, Depends(org_scope)]) -> OrgScope:
        scope.require(minimum)
        return scope

    dependency.__name__ = f"require_{minimum.value}"
    return dependency


ViewerScope = Annotated[OrgScope, Depends(require_role(Role.VIEWER))]
MemberScope = Annotated[OrgScope, Depends(require_role(Role.MEMBER))]
AdminScope = Annotated[OrgScope, Depends(require_role(Role.ADMIN))]
OwnerScope = Annotated[OrgScope, Depends(require_role(Role.OWNER))]
