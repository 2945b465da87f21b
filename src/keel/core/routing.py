"""Route templates: bounded labels for logs and metrics."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/tasks/{id}``), never the raw path.

    Raw paths carry ids and would explode metric cardinality.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return UNMATCHED_ROUTE
