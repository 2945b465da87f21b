"""Webhooks' routes, included by webhooks.install."""

from __future__ import annotations

from fastapi import APIRouter

from keel.webhooks.deliveries.router import router as deliveries_router
from keel.webhooks.endpoints.router import catalog_router
from keel.webhooks.endpoints.router import router as endpoints_router

routers: list[APIRouter] = [catalog_router, endpoints_router, deliveries_router]
