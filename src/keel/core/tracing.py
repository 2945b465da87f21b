"""Optional OpenTelemetry tracing through FastAPI's native telemetry support.

Needs the ``otel`` extra (``pip install 'keel[otel]'``). Only spans are
exported: metrics have Prometheus, and FastAPI's telemetry logs may hold
request input, which keel never exports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.config import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

_DISABLED: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class TracingUnavailable(RuntimeError):
    """KEEL_OTEL_ENABLED is on but the otel extra is not installed."""


def telemetry_config(settings: Settings, exporter: SpanExporter | None = None) -> dict[str, Any]:
    """FastAPI's ``telemetry=`` argument for these settings."""
    if not settings.observability.otel_enabled:
        return dict(_DISABLED)
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise TracingUnavailable("KEEL_OTEL_ENABLED needs the otel extra: pip install 'keel[otel]'") from exc

    provider = TracerProvider(resource=Resource.create({"service.name": settings.observability.otel_service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.observability.otel_exporter_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.observability.otel_exporter_endpoint
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return {"tracer_provider": provider, "metrics": False, "logs": False, "operation_spans": False}
