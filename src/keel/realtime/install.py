"""Realtime wires itself into the app: device and replay routes, the
WebSocket gateway at /api/v1/ws with this process's hub, and on the worker
the revocation of deleted accounts' devices and the purge of expired events."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.api import include_api_routers
from keel.core.platform import Platform
from keel.core.transactions import API_PREFIX
from keel.realtime.accounts import AccountDeletions
from keel.realtime.gateway import Gateway
from keel.realtime.hub import Hub
from keel.realtime.personal_data import RealtimePersonalData
from keel.realtime.presence.service import Presence
from keel.realtime.retention import retention_job
from keel.realtime.router import routers
from keel.realtime.services import Realtime

WEBSOCKET_PATH = API_PREFIX + "/ws"


def install(app: FastAPI, built: Platform) -> None:
    settings = built.settings
    resolver = built.principal_resolver

    async def active_user(session: AsyncSession, user_id: uuid.UUID, write: bool) -> bool:
        return await resolver.user_principal(session, user_id, write=write) is not None

    hub = Hub(built.cache)
    presence = Presence(built.cache, settings.realtime.realtime_presence_ttl_s)
    gateway = Gateway(
        database=built.database,
        cache=built.cache,
        hub=hub,
        presence=presence,
        settings=settings.realtime,
        signer=built.token_signer,
        active_user=active_user,
        heard_in=built.worker.heard_in,
        trusted_proxies=frozenset(settings.http.trusted_proxies),
        activity_interval_s=settings.auth.activity_write_interval_s,
    )
    built.provide(Realtime(settings.realtime, hub, gateway, presence))
    include_api_routers(app, built, routers)
    built.websocket_endpoints[WEBSOCKET_PATH] = gateway.serve
    built.worker.add_consumer(AccountDeletions(hub.disconnect_user))
    built.personal_data.append(RealtimePersonalData())
    built.worker.add_job(retention_job(settings, built.metrics))

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        await hub.start()
        presence.start()
        try:
            yield
        finally:
            await gateway.stop()
            await presence.stop()
            await hub.stop()

    built.lifespan_parts.append(running)
