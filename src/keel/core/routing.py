"""Route templates: bounded labels for logs and metrics."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/tasks/{id}``), never the raw path.

    Raw paths carry ids and would explode metric cardinality. FastAPI's routes
    put themselves in the scope; Starlette's own (the OpenAPI document, the
    docs assets' mount) leave only the endpoint they matched, whose route is
    looked up among the app's.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    endpoint = scope.get("endpoint")
    router = getattr(scope.get("app"), "router", None)
    if endpoint is not None and router is not None:
        for candidate in router.routes:
            if isinstance(candidate, Mount) and candidate.app is endpoint:
                return candidate.path + "/{path}"
            if getattr(candidate, "endpoint", None) is endpoint:
                return str(candidate.path)
    return UNMATCHED_ROUTE
