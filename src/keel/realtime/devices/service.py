"""A user's devices: registered with an Ed25519 public key, listed, revoked.

Revoking a device closes its live connections on every process once the
revocation commits (``disconnect``, given by the gateway)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.commit_hooks import after_commit
from keel.core.errors import Conflict, NotFound
from keel.core.outbox import emit
from keel.core.principal import Principal
from keel.core.request_info import RequestInfo
from keel.identity.audit.service import record
from keel.identity.orgs.service import personal_org_id
from keel.realtime.devices.models import Device
from keel.realtime.devices.repository import DeviceRepository, devices_by_ids, every_device_of
from keel.realtime.devices.schemas import DeviceCreate, DeviceRead
from keel.realtime.keys import parse_public_key

# Closes the live connections of these devices, on every process.
Disconnect = Callable[[Sequence[uuid.UUID]], None]


def _user(principal: Principal) -> uuid.UUID:
    assert principal.user_id is not None  # routes take CurrentUser
    return principal.user_id


async def register_device(
    session: AsyncSession, principal: Principal, origin: RequestInfo, *, body: DeviceCreate, max_devices: int
) -> DeviceRead:
    user_id = _user(principal)
    devices = DeviceRepository(session, user_id)
    if await devices.count() >= max_devices:
        raise Conflict(f"You have {max_devices} devices, the most allowed: revoke one first.")
    if await devices.name_taken(body.name):
        raise Conflict("You already have a device with that name.")
    device = Device(user_id=user_id, name=body.name, type=body.type, public_key=parse_public_key(body.public_key))
    session.add(device)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent registration took the name
        raise Conflict("You already have a device with that name.") from None
    record(
        session,
        origin,
        "device.registered",
        actor=principal,
        target_type="device",
        target_id=device.id,
        details={"name": device.name, "type": device.type},
    )
    about = {"user_id": str(user_id), "device_id": str(device.id), "name": device.name, "type": device.type}
    await emit(session, "device.registered", about, org_id=await personal_org_id(session, user_id))
    return DeviceRead.of(device)


async def list_devices(
    session: AsyncSession, principal: Principal, *, online: Collection[uuid.UUID]
) -> list[DeviceRead]:
    devices = await DeviceRepository(session, _user(principal)).listed()
    return [DeviceRead.of(device, online=device.id in online) for device in devices]


async def revoke_device(
    session: AsyncSession, principal: Principal, origin: RequestInfo, *, device_id: uuid.UUID, disconnect: Disconnect
) -> None:
    device = await DeviceRepository(session, _user(principal)).get(device_id)
    if device is None:
        raise NotFound("Device not found.")
    device.revoked_at = now()
    record(session, origin, "device.revoked", actor=principal, target_type="device", target_id=device.id)
    about = {"user_id": str(device.user_id), "device_id": str(device.id)}
    await emit(session, "device.revoked", about, org_id=await personal_org_id(session, device.user_id))
    after_commit(session, lambda: disconnect([device_id]))


async def revoke_all_devices(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Revoke every device of a user (their account is going)."""
    await DeviceRepository(session, user_id).revoke_all(now())


async def described(session: AsyncSession, device_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Device]:
    """These devices by id (their names and types, for presence), revoked ones too."""
    return {device.id: device for device in await devices_by_ids(session, device_ids)}


async def exported_devices(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, object]]:
    """Every device the user registered, revoked ones too, for their export."""
    return [
        {**DeviceRead.of(device).model_dump(mode="json", exclude={"online"}), "revoked_at": device.revoked_at}
        for device in await every_device_of(session, user_id)
    ]
