"""structlog configuration and the request-scoped log context.

Every log line carries the request id (bound by the request-context
middleware through contextvars) and, when tracing is on, the trace id.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.types import EventDict, Processor

from keel.config import Settings

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


def configure_logging(settings: Settings) -> None:
    """Route structlog and stdlib logging through one renderer.

    JSON in staging/production (or when asked), readable console output in
    development. Safe to call more than once (each app factory call does).
    """
    level = logging.getLevelName(settings.observability.log_level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
        _redact_secrets,
    ]
    renderer: Processor
    if settings.json_logs:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; bind key-value context instead of formatting strings."""
    return structlog.stdlib.get_logger(name)


def bind_request_id(request_id: str) -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id)


def clear_request_context() -> None:
    structlog.contextvars.clear_contextvars()
