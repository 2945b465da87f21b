from __future__ import annotations

import uuid

from fastapi import Response

from keel.core.auth import AdminScope, CurrentPrincipal, CurrentUser, OwnerScope, ViewerScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import DbSession, transactional_router
from keel.identity.orgs import service
from keel.identity.orgs.schemas import (
    MemberAdd,
    MemberRead,
    MemberUpdate,
    OrgCreate,
    OrgRead,
    OrgUpdate,
    OwnershipTransfer,
)

router = transactional_router(
    prefix="/orgs", tags=["organizations"], responses=problem_responses(401, 403, 404, 409, 422, 429)
)


@router.post("", response_model=OrgRead, status_code=201)
async def create_org(
    body: OrgCreate, principal: CurrentUser, session: DbSession, origin: CurrentRequestInfo
) -> OrgRead:
    """Create an organization owned by the caller. Auth: user."""
    return await service.create_org(session, principal, origin, name=body.name)


@router.get("", response_model=Page[OrgRead])
async def list_orgs(
    principal: CurrentPrincipal,
    session: DbSession,
    cursors: Cursors,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[OrgRead]:
    """The organizations the caller belongs to (an API key: its own), oldest first. Auth: any."""
    items, next_cursor = await service.list_orgs(session, principal, cursors, cursor=cursor, limit=limit)
    return Page[OrgRead](items=items, next_cursor=next_cursor)


@router.get("/{org_id}", response_model=OrgRead)
async def get_org(scope: ViewerScope) -> OrgRead:
    """One organization. Auth: viewer+."""
    return await service.get_org(scope.session, scope)


@router.patch("/{org_id}", response_model=OrgRead)
async def update_org(body: OrgUpdate, scope: AdminScope, origin: CurrentRequestInfo) -> OrgRead:
    """Rename an organization. Auth: admin+."""
    return await service.rename_org(scope.session, scope, origin, name=body.name)


@router.delete("/{org_id}", status_code=204)
async def delete_org(scope: OwnerScope, origin: CurrentRequestInfo) -> Response:
    """Delete an organization. Auth: owner."""
    await service.delete_org(scope.session, scope, origin)
    return Response(status_code=204)


@router.get("/{org_id}/members", response_model=Page[MemberRead])
async def list_members(
    scope: ViewerScope,
    cursors: Cursors,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[MemberRead]:
    """Members and their roles, in joining order. Auth: viewer+."""
    items, next_cursor = await service.list_members(scope.session, scope, cursors, cursor=cursor, limit=limit)
    return Page[MemberRead](items=items, next_cursor=next_cursor)


@router.post("/{org_id}/members", response_model=MemberRead, status_code=201)
async def add_member(body: MemberAdd, scope: AdminScope, origin: CurrentRequestInfo) -> MemberRead:
    """Add an existing user by email, with a role no stronger than the caller's. Auth: admin+."""
    return await service.add_member(scope.session, scope, origin, email=body.email, role=body.role)


@router.patch("/{org_id}/members/{user_id}", response_model=MemberRead)
async def update_member(
    user_id: uuid.UUID, body: MemberUpdate, scope: AdminScope, origin: CurrentRequestInfo
) -> MemberRead:
    """Change a member's role. The last owner cannot be demoted (409). Auth: admin+."""
    return await service.change_role(scope.session, scope, origin, user_id=user_id, role=body.role)


@router.delete("/{org_id}/members/{user_id}", status_code=204)
async def remove_member(user_id: uuid.UUID, scope: ViewerScope, origin: CurrentRequestInfo) -> Response:
    """Remove a member (admin+), or leave (anyone, for themselves). The last owner cannot leave (409)."""
    await service.remove_member(scope.session, scope, origin, user_id=user_id)
    return Response(status_code=204)


@router.post("/{org_id}/transfer-ownership", response_model=MemberRead)
async def transfer_ownership(body: OwnershipTransfer, scope: OwnerScope, origin: CurrentRequestInfo) -> MemberRead:
    """Make another member owner; the caller becomes admin. Auth: owner (a user)."""
    return await service.transfer_ownership(scope.session, scope, origin, user_id=body.user_id)
