"""The SQL of devices: a user's own, live devices, through ``mine``; the
handshake's and the export's lookups below say what they reach."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import execute_core
from keel.core.repository import Repository
from keel.realtime.devices.models import Device


class DeviceRepository(Repository[Device]):
    model = Device

    def __init__(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        super().__init__(session)
        self.user_id = user_id

    def mine(self, statement: Select[Any] | None = None) -> Select[Any]:
        """``statement`` (all devices by default) limited to this user's unrevoked ones."""
        statement = select(Device) if statement is None else statement
        return statement.where(Device.user_id == self.user_id, Device.revoked_at.is_(None))

    async def get(self, device_id: uuid.UUID) -> Device | None:
        return await self.one_or_none(self.mine().where(Device.id == device_id))

    async def listed(self) -> Sequence[Device]:
        return await self.all(self.mine().order_by(Device.created_at, Device.id))

    async def count(self) -> int:
        return int(await self.session.scalar(self.mine(select(func.count()).select_from(Device))) or 0)

    async def name_taken(self, name: str) -> bool:
        return await self.session.scalar(self.mine(select(Device.id)).where(Device.name == name).limit(1)) is not None

    async def revoke_all(self, at: datetime) -> list[uuid.UUID]:
        """Revoke every device of the user; the ids revoked."""
        revoked = await self.session.execute(
            update(Device)
            .where(Device.user_id == self.user_id, Device.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(Device.id)
        )
        return list(revoked.scalars())


async def live_device(session: AsyncSession, device_id: uuid.UUID) -> Device | None:
    """An unrevoked device by id, whoever's: the handshake's lookup, before it knows the user."""
    return (await session.scalars(select(Device).where(Device.id == device_id, Device.revoked_at.is_(None)))).first()


async def live_device_ids(session: AsyncSession, device_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these devices are not revoked."""
    if not device_ids:
        return set()
    return set((await execute_core(session, _LIVE_IDS, {"ids": sorted(device_ids)})).scalars())


_LIVE_IDS = select(Device.id).where(Device.id.in_(bindparam("ids", expanding=True)), Device.revoked_at.is_(None))


async def stamp_connected(session: AsyncSession, device_ids: Sequence[uuid.UUID], at: datetime) -> None:
    await session.execute(update(Device).where(Device.id.in_(device_ids)).values(last_connected_at=at))


async def devices_by_ids(session: AsyncSession, device_ids: Collection[uuid.UUID]) -> Sequence[Device]:
    if not device_ids:
        return []
    return (await session.scalars(select(Device).where(Device.id.in_(sorted(device_ids))))).all()


async def every_device_of(session: AsyncSession, user_id: uuid.UUID) -> Sequence[Device]:
    """The user's devices, revoked ones too: what their export holds."""
    return (await session.scalars(select(Device).where(Device.user_id == user_id).order_by(Device.created_at))).all()
