from __future__ import annotations

from fastapi import Response

from keel.core.auth import CurrentUser
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import DbSession, transactional_router
from keel.identity.services import Identity
from keel.identity.users import service
from keel.identity.users.schemas import AccountExport, MeRead, MeUpdate

router = transactional_router(prefix="/me", tags=["me"])

_AUTH: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing, invalid or expired credential."},
    403: {"description": "An API key cannot act as a user."},
}


@router.get("", response_model=MeRead, responses=_AUTH)
async def read_me(principal: CurrentUser, session: DbSession) -> MeRead:
    """The caller with their memberships. Auth: user access token."""
    return await service.me(session, principal)


@router.patch("", response_model=MeRead, responses={**_AUTH, 422: {"description": "Invalid input."}})
async def update_me(
    body: MeUpdate, principal: CurrentUser, session: DbSession, identity: Identity, origin: CurrentRequestInfo
) -> MeRead:
    """Change name or password (the current password is required; other sessions end). Auth: user."""
    return await service.update_me(session, identity.hasher, principal, origin, changes=body)


@router.get("/export", response_model=AccountExport, responses=_AUTH)
async def export_me(principal: CurrentUser, session: DbSession) -> AccountExport:
    """Everything keel holds about the caller, as JSON (GDPR access). Auth: user."""
    return await service.export(session, principal)


@router.delete("", status_code=204, responses={**_AUTH, 409: {"description": "Sole owner of an org with members."}})
async def delete_me(principal: CurrentUser, session: DbSession, origin: CurrentRequestInfo) -> Response:
    """Delete the account: revoke tokens and keys, leave orgs, anonymize personal data. Auth: user."""
    await service.delete_account(session, principal, origin)
    return Response(status_code=204)
