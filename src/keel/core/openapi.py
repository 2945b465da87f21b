"""OpenAPI additions FastAPI cannot infer: keel's bearer/API-key security.

``authenticate`` reads credentials itself (cheaper than FastAPI's security
classes on every request), so the schemes are declared here, on exactly the
operations whose dependencies include it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "JWT access token or a `keel_` API key."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    return dependant.call is call or any(_depends_on(sub, call) for sub in dependant.dependencies)


def declare_security(app: FastAPI, routes: Iterable[BaseRoute], authenticate: Callable[..., Any]) -> None:
    """Mark every operation that runs ``authenticate`` as needing a credential."""
    secured = {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, APIRoute) and _depends_on(route.dependant, authenticate)
        for method in route.methods or ()
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (path, method) in secured:
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
