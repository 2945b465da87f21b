"""What the rest of keel holds of realtime: the gateway, its hub, the settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from keel.config import RealtimeSettings
from keel.core.platform import request_platform
from keel.realtime.gateway import Gateway
from keel.realtime.hub import Hub
from keel.realtime.presence.service import Presence


@dataclass(frozen=True)
class Realtime:
    settings: RealtimeSettings
    hub: Hub
    gateway: Gateway
    presence: Presence

    async def online_devices(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        """The user's devices with a live session on any process (presence's
        view: this process's alone while the cache is away)."""
        online, _ = await self.presence.of_users([user_id])
        return {session.device_id for session in online.get(user_id, ()) if session.device_id is not None}


async def _realtime(request: Request) -> Realtime:
    return request_platform(request).get(Realtime)


RealtimeDep = Annotated[Realtime, Depends(_realtime)]
