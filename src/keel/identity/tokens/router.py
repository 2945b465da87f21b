from __future__ import annotations

from fastapi import Depends, Request, Response

from keel.core.errors import KeelError
from keel.core.openapi import problem_responses
from keel.core.ratelimit import enforce_rate_limit, rate_limit
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import DbSession, transactional_router
from keel.identity.services import Identity
from keel.identity.tokens import service
from keel.identity.tokens.schemas import AuthResponse, LoginRequest, RefreshRequest, RegisterRequest, TokenPairRead
from keel.identity.users import service as users
from keel.identity.users.policy import normalize_email
from keel.identity.users.schemas import UserRead

router = transactional_router(
    prefix="/auth",
    tags=["auth"],
    dependencies=[Depends(rate_limit("auth"))],
    responses=problem_responses(401, 422, 429),
)


@router.post(
    "/register",
    response_model=AuthResponse,
    status_code=201,
    responses=problem_responses(409),
)
async def register(
    body: RegisterRequest, session: DbSession, identity: Identity, origin: CurrentRequestInfo
) -> AuthResponse:
    """Create an account and its personal organization; returns a token pair. No auth."""
    user = await users.register(
        session, identity.hasher, origin, email=body.email, password=body.password, name=body.name
    )
    pair = await service.start_session(session, identity.issuer, user.id)
    return AuthResponse(**pair.model_dump(), user=UserRead.model_validate(user))


@router.post("/login", response_model=AuthResponse)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: DbSession,
    identity: Identity,
    origin: CurrentRequestInfo,
) -> AuthResponse:
    """Exchange email and password for a token pair. One generic 401 for any wrong credential. No auth."""
    try:
        account = normalize_email(body.email)[1]
    except KeelError:
        account = body.email.strip().lower()[:320]
    await enforce_rate_limit(request, response, "login_account", f"account:{account}")
    user = await users.verify_credentials(session, identity.hasher, origin, email=body.email, password=body.password)
    pair = await service.start_session(session, identity.issuer, user.id)
    return AuthResponse(**pair.model_dump(), user=UserRead.model_validate(user))


@router.post("/refresh", response_model=TokenPairRead)
async def refresh(
    body: RefreshRequest, session: DbSession, identity: Identity, origin: CurrentRequestInfo
) -> TokenPairRead:
    """Rotate a refresh token. Presenting a spent token revokes its whole session. No auth."""
    return await service.refresh(session, identity.issuer, origin, refresh_token=body.refresh_token)


@router.post("/logout", status_code=204)
async def logout(body: RefreshRequest, session: DbSession) -> Response:
    """End the session the refresh token belongs to. No auth (the token is the proof)."""
    await service.logout(session, refresh_token=body.refresh_token)
    return Response(status_code=204)
