"""Identity wires itself into the app: its routes, the principal resolver
core's authentication asks, its services, and its part of the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from keel.core.api import include_api_routers
from keel.core.platform import Platform
from keel.identity.access_cache import AccessCache
from keel.identity.resolver import IdentityResolver
from keel.identity.router import routers
from keel.identity.services import IdentityServices


def install(app: FastAPI, platform: Platform) -> None:
    settings, database = platform.settings, platform.database
    access_cache = AccessCache(ttl_s=settings.auth.access_cache_ttl_s)
    access_cache.watch(database.session_class)
    resolver = IdentityResolver(
        database, activity_interval_s=settings.auth.activity_write_interval_s, access=access_cache
    )
    platform.resolver = resolver
    platform.provide(IdentityServices.build(settings, platform.token_signer))

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        # Other processes' access changes arrive over the cache's pub/sub.
        following = asyncio.create_task(access_cache.follow(platform.cache)) if access_cache.enabled else None
        try:
            yield
        finally:
            if following is not None:
                access_cache.stop()
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            await access_cache.close()
            await resolver.last_seen.settle()  # readers' stamps handed over, written

    platform.lifespan_parts.append(running)
    include_api_routers(app, platform, routers)
