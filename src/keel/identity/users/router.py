from __future__ import annotations

from fastapi import Request, Response

from keel.core.auth import CurrentUser
from keel.core.openapi import problem_responses
from keel.core.platform import request_platform
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import DbSession, transactional_router
from keel.identity.services import Identity
from keel.identity.users import service
from keel.identity.users.schemas import AccountExport, MeRead, MeUpdate

router = transactional_router(prefix="/me", tags=["me"], responses=problem_responses(401, 403, 429))


@router.get("", response_model=MeRead)
async def read_me(principal: CurrentUser, session: DbSession) -> MeRead:
    """The caller with their memberships. Auth: user access token."""
    return await service.me(session, principal)


@router.patch("", response_model=MeRead, responses=problem_responses(422))
async def update_me(
    body: MeUpdate, principal: CurrentUser, session: DbSession, identity: Identity, origin: CurrentRequestInfo
) -> MeRead:
    """Change name or password (the current password is required; other sessions end). Auth: user."""
    return await service.update_me(session, identity.hasher, principal, origin, changes=body)


@router.get("/export", response_model=AccountExport)
async def export_me(principal: CurrentUser, session: DbSession, request: Request) -> AccountExport:
    """Everything keel holds about the caller, as JSON (GDPR access). Auth: user."""
    return await service.export(session, principal, request_platform(request).personal_data)


@router.delete("", status_code=204, responses=problem_responses(409))
async def delete_me(principal: CurrentUser, session: DbSession, origin: CurrentRequestInfo) -> Response:
    """Delete the account: revoke tokens and keys, leave orgs, anonymize personal data. Auth: user."""
    await service.delete_account(session, principal, origin)
    return Response(status_code=204)
