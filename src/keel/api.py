"""The versioned public API: every domain's routers, each under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from keel.core.transactions import API_PREFIX, TransactionalRoute
from keel.identity.router import routers as identity_routers
from keel.work.router import routers as work_routers

__all__ = ["API_PREFIX", "api_routers"]


def api_routers() -> list[APIRouter]:
    """Every domain router, checked to run inside the transaction boundary.

    Rate limits: authenticated routes count per principal (in
    ``authenticate``); public auth routes count per client address.
    """
    routers = [*identity_routers, *work_routers]
    for router in routers:
        loose = [getattr(r, "path", r) for r in router.routes if not isinstance(r, TransactionalRoute)]
        if loose:  # a route outside the boundary would never commit
            raise RuntimeError(f"routes not built with transactional_router: {loose}")
        if not all(getattr(r, "path", "").startswith(API_PREFIX) for r in router.routes):
            raise RuntimeError("API routes must live under " + API_PREFIX)
    return routers
