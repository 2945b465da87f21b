"""Who is calling, and what they may do in an organization.

``authenticate`` turns a bearer credential (JWT access token or ``keel_`` API
key) into a :class:`Principal`; ``require_role`` turns a credential and an org
id from the path into an :class:`OrgScope`. Looking credentials up
is the identity domain's job: its install sets a :class:`PrincipalResolver` on
the app's platform, so core never imports a domain.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import Forbidden, NotFound, Unauthorized
from keel.core.platform import request_platform
from keel.core.principal import API_KEY_PREFIX, OrgScope, Principal, Role
from keel.core.ratelimit import enforce_rate_limit
from keel.core.security import InvalidToken
from keel.core.transactions import DbSession, is_write_request, request_session


class PrincipalResolver(Protocol):
    """Implemented by the identity domain; looks credentials up in the database."""

    async def user_principal(self, session: AsyncSession, user_id: uuid.UUID, *, write: bool) -> Principal | None: ...

    async def api_key_principal(self, session: AsyncSession, api_key: str, *, write: bool) -> Principal | None: ...

    async def role_in_org(
        self, session: AsyncSession, principal: Principal, org_id: uuid.UUID, *, write: bool
    ) -> Role | None: ...

    async def user_in_org(
        self, session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID, *, write: bool
    ) -> tuple[Principal | None, Role | None]:
        """``user_principal`` and ``role_in_org`` together (one lookup for a write)."""
        ...


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
    principal, _ = await _authenticated(request, response, session, org_id=None)
    return principal


async def _authenticated(
    request: Request, response: Response, session: AsyncSession, *, org_id: uuid.UUID | None
) -> tuple[Principal, Role | None]:
    """The caller (401 unless known and active), counted against its rate
    limit, and its role in ``org_id`` when one is given."""
    credential = _credential(request)
    if credential is None:
        raise Unauthorized("Authentication required.")
    resolver = request_platform(request).principal_resolver
    write = is_write_request(request)
    if credential.startswith(API_KEY_PREFIX):
        # Counted by a digest of the key itself: known before any lookup, never the key.
        await enforce_rate_limit(request, response, "default", "key:" + hashlib.sha256(credential.encode()).hexdigest())
        principal = await resolver.api_key_principal(session, credential, write=write)
        if principal is None:
            raise Unauthorized("Invalid or revoked credential.")
        role = await resolver.role_in_org(session, principal, org_id, write=write) if org_id is not None else None
        return principal, role
    signer = request_platform(request).token_signer
    try:
        claims = signer.verify(credential)
        user_id = uuid.UUID(str(claims["sub"]))
    except (InvalidToken, ValueError):
        raise Unauthorized("Invalid or expired token.") from None
    # The signature proves who is calling: counted before any lookup, so a
    # refused request does no SQL.
    await enforce_rate_limit(request, response, "default", Principal(user_id=user_id).subject)
    user: Principal | None
    role = None
    if org_id is None:
        user = await resolver.user_principal(session, user_id, write=write)
    else:
        user, role = await resolver.user_in_org(session, user_id, org_id, write=write)
    if user is None:
        raise Unauthorized("Invalid or revoked credential.")
    return Principal(user_id=user.user_id, token_jti=str(claims["jti"])), role


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def current_user(principal: CurrentPrincipal) -> Principal:
    """A principal that is a user (routes about "me" make no sense for a key)."""
    if not principal.is_user:
        raise Forbidden("This route needs a user's access token, not an API key.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


@dataclass(frozen=True, slots=True)
class RequestScope(OrgScope):
    """An org-scoped request: the caller's org scope and the request's
    database session, from one dependency. A separate session dependency
    cost every org-scoped request another FastAPI solve (~5 % of a loaded
    task GET)."""

    session: AsyncSession


def require_role(minimum: Role) -> Callable[..., Awaitable[RequestScope]]:
    """A dependency: the org scope, or 403 when the caller's role is weaker than ``minimum``.

    One dependency that calls the steps (session, principal, scope) rather
    than a chain of dependencies: FastAPI's solving of each level costs more
    than that level's work, and every org-scoped request pays it.
    """

    async def dependency(org_id: uuid.UUID, request: Request, response: Response) -> RequestScope:
        session = await request_session(request)
        principal, role = await _authenticated(request, response, session, org_id=org_id)
        if role is None:  # not a member: the org's existence never leaks
            raise NotFound("Organization not found.")
        scope = RequestScope(org_id=org_id, role=role, principal=principal, session=session)
        scope.require(minimum)
        return scope

    dependency.__name__ = f"require_{minimum.value}"
    AUTHENTICATING.add(dependency)
    return dependency


# Dependencies that authenticate the caller (OpenAPI declares their routes secured).
AUTHENTICATING: set[Callable[..., Awaitable[object]]] = {authenticate}

# What an org-scoped route declares: the scope at a minimum role, with the request's session.
ViewerScope = Annotated[RequestScope, Depends(require_role(Role.VIEWER))]
MemberScope = Annotated[RequestScope, Depends(require_role(Role.MEMBER))]
AdminScope = Annotated[RequestScope, Depends(require_role(Role.ADMIN))]
OwnerScope = Annotated[RequestScope, Depends(require_role(Role.OWNER))]
