"""keel with its production middleware switched off (request id, access log,
metrics, security headers, limits): the other side of the middleware-cost
comparison. Same build, same settings; only the middleware list is emptied
before the first request builds the stack."""

from __future__ import annotations

from fastapi import FastAPI

from keel.main import create_app


def app() -> FastAPI:
    application = create_app()
    application.user_middleware.clear()
    return application
