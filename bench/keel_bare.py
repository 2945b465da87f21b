"""keel with its production middleware switched off (request id, access log,
metrics, security headers, limits): the other side of the middleware-cost
comparison. Same build, same settings; only the middleware list is emptied
before the first request builds the stack."""

from __future__ import annotations

from fastapi import FastAPI

from keel.main import app_from_environment


def without_middleware(application: FastAPI) -> FastAPI:
    """``application`` with its middleware list emptied (before its first request)."""
    application.user_middleware.clear()
    return application


def app() -> FastAPI:
    return without_middleware(app_from_environment())
