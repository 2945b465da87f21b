"""The versioned public API: every domain router, mounted under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from keel.core.ratelimit import rate_limit
from keel.core.transactions import TransactionalRoute

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    """All domain routes share the transaction boundary and the default limit."""
    router = APIRouter(
        prefix=API_PREFIX,
        route_class=TransactionalRoute,
        dependencies=[Depends(rate_limit("default"))],
    )
    return router
