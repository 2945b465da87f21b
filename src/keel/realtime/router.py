"""Realtime's HTTP routes, included by realtime.install (the WebSocket route is added there)."""

from __future__ import annotations

from fastapi import APIRouter

from keel.realtime.devices.router import router as devices_router
from keel.realtime.events.router import router as events_router
from keel.realtime.presence.router import router as presence_router

routers: list[APIRouter] = [devices_router, events_router, presence_router]
