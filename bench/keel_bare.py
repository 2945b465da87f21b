"""keel with its production middleware switched off (request id, access log,
metrics, security headers, limits): the other side of the middleware-cost
comparison. Same build, same settings; only the middleware list is emptied
before the first request builds the stack."""

from __future__ import annotations

from fastapi import FastAPI

from keel.main import app_from_environment


def app() -> FastAPI:
    application = app_from_environment()
    application.user_middleware.clear()
    return application
