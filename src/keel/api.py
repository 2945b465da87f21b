"""The versioned public API: every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from keel.core.transactions import TransactionalRoute
from keel.identity.router import routers as identity_routers

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    """Every domain route shares the transaction boundary.

    Rate limits: authenticated routes count per principal (in
    ``authenticate``); public auth routes count per client address.
    """
    router = APIRouter(prefix=API_PREFIX, route_class=TransactionalRoute)
    for domain_router in identity_routers:
        loose = [getattr(r, "path", r) for r in domain_router.routes if not isinstance(r, TransactionalRoute)]
        if loose:  # a route outside the boundary would never commit
            raise RuntimeError(f"routes not built with transactional_router: {loose}")
        router.include_router(domain_router)
    return router
