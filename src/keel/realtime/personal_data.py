"""Realtime's part of a user's export: their devices and their stored events."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.personal_data import PersonalRows
from keel.realtime.devices.service import exported_devices
from keel.realtime.events.service import exported_events


class RealtimePersonalData:
    name = "realtime"

    async def export(self, session: AsyncSession, user_id: uuid.UUID) -> PersonalRows:
        return {"devices": await exported_devices(session, user_id), "events": await exported_events(session, user_id)}
