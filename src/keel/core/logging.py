"""structlog configuration and the request-scoped log context.

Every log line carries the request id (set by the request-context
middleware in a context variable) and, when tracing is on, the trace id.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, cast

import orjson
import structlog
from structlog.types import EventDict, Processor
from structlog.typing import FilteringBoundLogger

from keel.config import Settings
from keel.core.clock import utc_timestamp

# Keys whose values never reach a log line, whoever logs them.
_REDACTED_KEYS = frozenset(
    {"password", "secret", "secret_key", "token", "access_token", "refresh_token", "authorization", "api_key"}
)


_HANDLER_NAME = "keel"


def _redact_secrets(_: Any, __: str, event_dict: EventDict) -> EventDict:
    for key in event_dict.keys() & _REDACTED_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Attach the OpenTelemetry trace and span ids when a span is recording."""
    try:
        from opentelemetry import trace
    except ImportError:  # the otel extra is optional
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


class _LineWriter:
    """keel's log lines to the *current* ``sys.stderr``, written together once
    per event-loop pass.

    stderr is line-buffered, so each line was a ``write()`` system call of
    its own — under load the largest part of an access line's cost. Lines
    logged on a running loop are held until the loop's next pass (the lines
    of all requests that finished in this one go out in one call, before the
    loop next waits for I/O); elsewhere (the CLI, worker threads) a line is
    written at once. Looking ``sys.stderr`` up per write keeps redirection by
    a supervisor or a test working.
    """

    def __init__(self) -> None:
        self._held: list[str] = []

    def write(self, line: str) -> None:
        if not self._held:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop in this thread
                sys.stderr.write(line)
                return
        self._held.append(line)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            sys.stderr.write("".join(held))


_lines = _LineWriter()
atexit.register(_lines.flush)


def flush_log_lines() -> None:
    """Write out the lines held for this loop pass (tests reading stderr)."""
    _lines.flush()


class _StderrLogger:
    """structlog's last step: one line to stderr, through ``_LineWriter``.

    keel's own events skip the stdlib logging machinery (a handler, a record
    and a formatter per line cost several times the JSON rendering).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name  # for structlog's add_logger_name

    def msg(self, message: str) -> None:
        _lines.write(message + "\n")

    debug = info = warning = error = critical = exception = fatal = log = msg


def _stderr_logger(name: str = "keel", *_: Any) -> _StderrLogger:
    return _StderrLogger(name)


def _json_dumps(event_dict: EventDict, **_: Any) -> str:
    return orjson.dumps(event_dict, default=str).decode()


def configure_logging(settings: Settings) -> None:
    """Render structlog and stdlib logging (uvicorn, SQLAlchemy) alike.

    JSON in staging/production (or when asked), readable console output in
    development. Safe to call more than once (each app factory call does).
    """
    level = logging.getLevelName(settings.observability.log_level)
    shared: list[Processor] = [
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        _utc_timestamp,
    ]
    if settings.observability.otel_enabled:
        shared.append(_add_trace_ids)
    shared.append(_redact_secrets)
    renderer: Processor
    if settings.json_logs:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
        shared.append(structlog.processors.format_exc_info)
    else:
        # Plain tracebacks: a rich one lists each frame's local variables,
        # which hold passwords, tokens and statement parameters.
        renderer = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)

    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # uvicorn's own access log would duplicate ours and lacks the request id.
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def _utc_timestamp(_: Any, __: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = utc_timestamp()
    return event_dict


class _InfoLineLogger:
    """Info lines rendered as keel's other lines are, without structlog's
    bound-logger machinery (a context copy, the processor loop and a level
    check per call): the access log writes one per request."""

    __slots__ = ("enabled", "name", "render", "tracing")

    def __init__(self, name: str) -> None:
        config = structlog.get_config()
        self.name = name
        # keel's renderers (JSON through orjson, the console one) return text.
        self.render = cast(Callable[[Any, str, EventDict], str], config["processors"][-1])
        self.tracing = _add_trace_ids in config["processors"]
        probe = structlog.wrap_logger(None, wrapper_class=config["wrapper_class"])
        self.enabled = bool(probe.is_enabled_for(logging.INFO))

    def info(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        # The order structlog's chain gives: fields, event, level, logger, timestamp.
        fields["event"] = event
        fields["level"] = "info"
        fields["logger"] = self.name
        fields["timestamp"] = utc_timestamp()
        if self.tracing:
            _add_trace_ids(None, "info", fields)
        _lines.write(f"{self.render(None, 'info', fields)}\n")


def per_request_logger(name: str) -> _InfoLineLogger:
    """A logger for one line per request (the access log).

    Its caller passes every field, the request id included, so it skips the
    request-id lookup and the secret redaction (its fields are known
    and safe). Call it after ``configure_logging``.
    """
    return _InfoLineLogger(name)


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger; bind key-value context instead of formatting strings.

    Module-level loggers follow reconfiguration; a hot path may call
    ``.bind()`` once after ``configure_logging`` for a concrete, faster one.
    """
    return cast(FilteringBoundLogger, structlog.get_logger(name))


# The request id has a context variable of its own: setting one variable costs a
# fraction of structlog's bind/clear, which copy and walk the whole context.
_request_id: ContextVar[str | None] = ContextVar("keel_request_id", default=None)


def _add_request_id(_: Any, __: str, event_dict: EventDict) -> EventDict:
    request_id = _request_id.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def bind_request_id(request_id: str) -> None:
    _request_id.set(request_id)


def clear_request_context() -> None:
    _request_id.set(None)
