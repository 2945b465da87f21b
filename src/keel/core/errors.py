"""The KeelError tree and its single mapping to RFC 9457 problem+json.

Services raise KeelErrors; ``install_error_handlers`` maps them, FastAPI's
validation errors and Starlette's HTTP errors to one body shape. Pure ASGI
middleware that must answer before routing uses :func:`send_problem`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope, Send

from keel.core.logging import get_logger
from keel.core.platform import request_platform

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Per-request values live under keel's own scope keys: scope["state"] may be
# shared between requests (it is copied from the lifespan state).
REQUEST_ID_SCOPE_KEY = "keel.request_id"
_TYPE_PREFIX = "urn:keel:problem:"


class KeelError(Exception):
    """Base of every error keel reports to a client.

    Subclasses set ``status``, ``slug`` and ``title``; an instance carries a
    human ``detail`` safe to show the client (never a secret, never input).
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        # Security reactions (revoking a stolen token family, auditing it)
        # must commit even though the request itself is refused.
        self.keep_changes = keep_changes


class BadRequest(KeelError):
    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(KeelError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(KeelError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(KeelError):
    status, slug, title = 404, "not-found", "Not Found"


class MethodNotAllowed(KeelError):
    status, slug, title = 405, "method-not-allowed", "Method Not Allowed"


class Conflict(KeelError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(KeelError):
    status, slug, title = 412, "precondition-failed", "Precondition Failed"


class RequestTimeout(KeelError):
    status, slug, title = 408, "request-timeout", "Request Timeout"


class PayloadTooLarge(KeelError):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(KeelError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(KeelError):
    status, slug, title = 422, "validation-error", "Validation Error"


class TooManyRequests(KeelError):
    status, slug, title = 429, "rate-limited", "Too Many Requests"


class HeadersTooLarge(KeelError):
    status, slug, title = 431, "headers-too-large", "Request Header Fields Too Large"


class InternalError(KeelError):
    """Unexpected failure: the detail stays generic; the log has the rest."""

    status, slug, title = 500, "internal-error", "Internal Server Error"


class ServiceUnavailable(KeelError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


class GatewayTimeout(KeelError):
    status, slug, title = 504, "timeout", "Request Timeout"


_BY_STATUS: dict[int, type[KeelError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        RequestTimeout,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        TooManyRequests,
        HeadersTooLarge,
        InternalError,
        ServiceUnavailable,
        GatewayTimeout,
    )
}


def error_for_status(status: int, detail: str | None = None) -> KeelError:
    """The KeelError matching an HTTP status; unknown ones fall back by class."""
    fallback = BadRequest if 400 <= status < 500 else InternalError
    return _BY_STATUS.get(status, fallback)(detail)


def problem_body(error: KeelError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "request_id": request_id,
    }
    body.update(error.extra)
    return body


def problem_response(error: KeelError, request_id: str | None) -> Response:
    return Response(
        content=orjson.dumps(problem_body(error, request_id)),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def scope_request_id(scope: Scope) -> str | None:
    """The request id the request-context middleware put in the scope."""
    value = scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


async def send_problem(send: Send, error: KeelError, scope: Scope) -> None:
    """Answer with a problem from pure ASGI code, before or outside routing."""
    body = orjson.dumps(problem_body(error, scope_request_id(scope)))
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def request_id_of(request: Request) -> str | None:
    return scope_request_id(request.scope)


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Location and message only: pydantic's ``input`` would echo the body."""
    return [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in errors]


async def _on_keel_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeelError)
    return problem_response(exc, request_id_of(request))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc.errors())
    malformed_json = any(err["msg"].startswith("JSON decode error") for err in errors)
    detail = "The request body is not valid JSON." if malformed_json else "The request is not valid."
    error = ValidationFailed(detail, extra={"errors": errors})
    return problem_response(error, request_id_of(request))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error = error_for_status(exc.status_code)
    if exc.headers:
        error.headers.update(exc.headers)
    if exc.status_code == 405 and (methods := _api_methods_at(request)):
        error.headers["Allow"] = ", ".join(methods)
    return problem_response(error, request_id_of(request))


def _api_methods_at(request: Request) -> list[str]:
    """Every method some API route serves at this path. Routing stops at the
    first route whose path matches, so its 405 names only that route's methods."""
    methods: set[str] = set()
    for route in request_platform(request).api_routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


_database_log = get_logger("keel.db")
# SQLSTATE classes meaning "the database cannot serve now", not "this request
# is wrong": connection exceptions, insufficient resources (too many
# connections), operator intervention (shutting down, starting up), and a
# server that does not know keel's role or database.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "28", "3D"})


def stale_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is a pooled connection found closed by the database
    (SQLAlchemy has dropped it and every connection older than it)."""
    return isinstance(exc, sqlalchemy_exc.DBAPIError) and exc.connection_invalidated


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or the
    connection was lost, rather than that a statement failed."""
    if isinstance(exc, ConnectionError) or stale_connection(exc):  # refused, reset, closed
        return True
    if isinstance(exc, sqlalchemy_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    return False


def database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is too busy now: no pooled connection
    came free in time, or SQLite's write lock stayed taken."""
    return isinstance(exc, sqlalchemy_exc.TimeoutError) or (
        isinstance(exc, sqlalchemy_exc.OperationalError) and "locked" in str(exc.orig)
    )


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is busy or unreachable: a retry may
    succeed, and there is no bug to trace."""
    return database_busy(exc) or database_unavailable(exc)


def retry_shortly(exc: BaseException) -> str | None:
    """What to tell a client whose work ``exc`` stopped, when a retry may
    succeed (the database busy or unreachable, the latter logged as one
    warning line without a traceback); None for any other error."""
    if database_busy(exc):
        return "The database is busy; retry shortly."
    if database_unavailable(exc):
        _database_log.warning("db.unavailable", error=type(exc).__name__)
        return "The database is unavailable; retry shortly."
    return None


async def _on_database_error(request: Request, exc: Exception) -> Response:
    """Errors the request's changes cannot survive, but a retry may: no pooled
    connection came free in time, SQLite's write lock stayed taken, or the
    database is unreachable (restarting, down, misconfigured). The request's
    transaction rolled back, so it changed nothing: 503 with Retry-After, and
    one warning line without a traceback. Any other database error stays a 500."""
    detail = retry_shortly(exc)
    if detail is None:
        raise exc
    return problem_response(ServiceUnavailable(detail, headers={"Retry-After": "1"}), request_id_of(request))


def install_error_handlers(app: FastAPI) -> None:
    """The one place where exceptions become responses."""
    app.add_exception_handler(KeelError, _on_keel_error)
    app.add_exception_handler(sqlalchemy_exc.TimeoutError, _on_database_error)
    app.add_exception_handler(sqlalchemy_exc.DBAPIError, _on_database_error)
    app.add_exception_handler(ConnectionError, _on_database_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
