"""Operational routes, outside /api/v1 and unauthenticated: health, metrics, docs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import Response

from keel.core.metrics import PROMETHEUS_CONTENT_TYPE
from keel.core.middleware.security_headers import DOCS_PATH
from keel.core.platform import request_platform

_SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/static/docs"


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class ReadinessCheck(BaseModel):
    """One dependency's state."""

    status: Literal["ok", "degraded", "error"]
    detail: str | None = None


class ReadinessReport(BaseModel):
    """Whether keel can serve: the database, its schema and (when configured) Redis."""

    status: Literal["ok", "degraded", "error"]
    checks: dict[str, dict[str, Any]]


async def live() -> Liveness:
    """The process is up and serving."""
    return Liveness()


async def ready(request: Request) -> Response:
    """The database answers, the schema is at head, Redis (if configured) answers."""
    checker = request_platform(request).health
    readiness = await checker.readiness()
    return JSONResponse(readiness.body(), status_code=readiness.http_status)


async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    registry = request_platform(request).metrics
    return Response(registry.render(), media_type=PROMETHEUS_CONTENT_TYPE)


def add_operational_routes(app: FastAPI, *, expose_metrics: bool) -> None:
    """Health (and metrics) as the app's own routes rather than an included
    router: FastAPI's included-router machinery cost about 10 µs a request
    (as much as keel's whole request layer on a trivial route), and probes
    call these routes the most."""
    tags: list[str | Enum] = ["operations"]
    app.add_api_route("/health/live", live, methods=["GET"], response_model=Liveness, tags=tags)
    app.add_api_route(
        "/health/ready",
        ready,
        methods=["GET"],
        response_model=ReadinessReport,
        responses={503: {"model": ReadinessReport, "description": "A required dependency is failing."}},
        tags=tags,
    )
    if expose_metrics:
        app.add_api_route(
            "/metrics",
            metrics,
            methods=["GET"],
            response_class=Response,
            responses={200: {"content": {PROMETHEUS_CONTENT_TYPE: {}}}},
            tags=tags,
        )


def mount_docs(app: FastAPI) -> None:
    """Swagger UI served from local assets: /docs works with no internet."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=_SWAGGER_ASSETS), name="docs-assets")

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )

    # HEAD as well, as for the document and the assets (link checkers, monitors).
    app.add_api_route(DOCS_PATH, swagger_ui, methods=["GET", "HEAD"], include_in_schema=False)
