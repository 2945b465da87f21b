"""OpenAPI additions FastAPI cannot infer: security schemes and problem+json errors.

keel's authenticating dependencies read credentials themselves (cheaper than
FastAPI's security classes on every request), so the schemes are declared
here, on exactly the operations whose dependencies include one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (for example a tampered cursor).",
    401: "Missing, invalid, expired or revoked credential.",
    403: "Authenticated, but the role in the organization is too weak.",
    404: "Not found — also for resources of organizations you are not in.",
    409: "Conflicts with the current state.",
    412: "If-Match did not match the current version.",
    413: "Request body too large.",
    415: "Request body is not JSON.",
    422: "Invalid input; `errors` lists each field.",
    429: "Rate limited; see Retry-After.",
    503: "The database is unavailable or keel is at capacity; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem+json errors a route can return."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {}}, "msg": {"type": "string"}},
            },
        },
    },
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "JWT access token or a `keel_` API key."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _depends_on(dependant: Any, calls: Collection[Callable[..., Any]]) -> bool:
    if any(dependant.call is call for call in calls):
        return True
    return any(_depends_on(sub, calls) for sub in dependant.dependencies)


def declare_security(app: FastAPI, routes: Iterable[BaseRoute], authenticating: Collection[Callable[..., Any]]) -> None:
    """Mark every operation that runs one of the ``authenticating`` dependencies as needing a credential."""
    secured = {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, APIRoute) and _depends_on(route.dependant, authenticating)
        for method in route.methods or ()
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        components.setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if (path, method) in secured:
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
