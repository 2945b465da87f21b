from __future__ import annotations

import uuid

from fastapi import Response

from keel.core.auth import CurrentUser
from keel.core.openapi import problem_responses
from keel.core.pagination import Page
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import DbSession, transactional_router
from keel.realtime.devices import service
from keel.realtime.devices.schemas import DeviceCreate, DeviceRead
from keel.realtime.services import RealtimeDep

router = transactional_router(prefix="/devices", tags=["devices"], responses=problem_responses(401, 403, 429))


@router.post("", response_model=DeviceRead, status_code=201, responses=problem_responses(409, 422))
async def register_device(
    body: DeviceCreate, principal: CurrentUser, session: DbSession, origin: CurrentRequestInfo, realtime: RealtimeDep
) -> DeviceRead:
    """Register a device by its Ed25519 public key; it then signs its WebSocket handshakes. Auth: user."""
    return await service.register_device(
        session, principal, origin, body=body, max_devices=realtime.settings.realtime_max_devices_per_user
    )


@router.get("", response_model=Page[DeviceRead])
async def list_devices(principal: CurrentUser, session: DbSession, realtime: RealtimeDep) -> Page[DeviceRead]:
    """The caller's devices, oldest first (all of them: a user has few). Auth: user."""
    assert principal.user_id is not None
    items = await service.list_devices(session, principal, online=await realtime.online_devices(principal.user_id))
    return Page[DeviceRead](items=items, next_cursor=None)


@router.delete("/{device_id}", status_code=204, responses=problem_responses(404))
async def revoke_device(
    device_id: uuid.UUID, principal: CurrentUser, session: DbSession, origin: CurrentRequestInfo, realtime: RealtimeDep
) -> Response:
    """Revoke a device: its key stops working and its live connections close. Auth: user."""
    await service.revoke_device(
        session, principal, origin, device_id=device_id, disconnect=realtime.hub.disconnect_devices
    )
    return Response(status_code=204)
