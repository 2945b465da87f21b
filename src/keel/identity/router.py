"""Identity's routes, included by identity.install."""

from __future__ import annotations

from fastapi import APIRouter

from keel.identity.api_keys.router import router as api_keys_router
from keel.identity.audit.router import router as audit_router
from keel.identity.orgs.router import router as orgs_router
from keel.identity.tokens.router import router as auth_router
from keel.identity.users.router import router as me_router

routers: list[APIRouter] = [auth_router, me_router, orgs_router, api_keys_router, audit_router]
