"""Work wires itself into the app: its routes (its services are stateless)."""

from __future__ import annotations

from fastapi import FastAPI

from keel.core.api import include_api_routers
from keel.core.platform import Platform
from keel.work.router import routers


def install(app: FastAPI, platform: Platform) -> None:
    include_api_routers(app, platform, routers)
