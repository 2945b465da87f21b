"""The versioned public API's rule for the routers domains include."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI

from keel.core.platform import Platform
from keel.core.transactions import API_PREFIX, TransactionalRoute


def include_api_routers(app: FastAPI, platform: Platform, routers: Iterable[APIRouter]) -> None:
    """Include a domain's routers, each checked to run inside the transaction
    boundary (a route outside it would never commit) and under /api/v1, and
    list their routes in ``platform.api_routes`` (the OpenAPI security
    declarations and checks read this list)."""
    for router in routers:
        loose = [getattr(r, "path", r) for r in router.routes if not isinstance(r, TransactionalRoute)]
        if loose:
            raise RuntimeError(f"routes not built with transactional_router: {loose}")
        if not all(getattr(r, "path", "").startswith(API_PREFIX) for r in router.routes):
            raise RuntimeError("API routes must live under " + API_PREFIX)
        # The routes join the app's own route list, as routes declared on the
        # app do: one flat list matched in order. An included router is a
        # branch matched twice per request, once to select it and once to
        # dispatch inside it (docs/performance.md has the measured cost).
        app.router.routes.extend(router.routes)
        platform.api_routes.extend(router.routes)
