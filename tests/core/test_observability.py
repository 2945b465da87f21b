"""Structured logs (JSON when deployed) and optional OpenTelemetry tracing."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keel.config import ObservabilitySettings
from keel.core.logging import flush_log_lines
from keel.core.tracing import telemetry_config
from keel.main import create_app
from tests.fixtures import routes


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What keel wrote to stderr since the last call, held lines included."""
    flush_log_lines()
    return capsys.readouterr().err


@pytest.mark.readiness("logging.json")
async def test_json_logs_carry_request_id_and_never_secrets(make_settings, make_client, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(observability=ObservabilitySettings(log_format="json"))
    client = await make_client(create_app(settings, routers=[routes.router]))
    logged(capsys)
    await client.get("/test/boom", headers={"x-request-id": "json-1", "authorization": "Bearer tok-secret"})
    lines = json_lines(logged(capsys))
    access = next(line for line in lines if line["event"] == "http.request")
    assert access["request_id"] == "json-1"
    assert access["status"] == 500
    assert access["route"] == "/test/boom"
    error = next(line for line in lines if line["event"] == "http.unhandled_error")
    assert error["request_id"] == "json-1"
    assert "Traceback" in str(error["exception"])  # the full traceback stays in the log
    assert "tok-secret" not in json.dumps(lines)


def test_known_secret_keys_are_redacted_from_log_events(make_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from keel.core.logging import configure_logging, get_logger

    configure_logging(make_settings(observability=ObservabilitySettings(log_format="json")))
    get_logger("keel.test").warning("login.failed", email="a@example.com", password="hunter2", token="abc")
    line = json_lines(logged(capsys))[-1]
    assert line["password"] == "[redacted]"
    assert line["token"] == "[redacted]"
    assert line["email"] == "a@example.com"


@pytest.mark.readiness("observability.tracing")
async def test_tracing_exports_spans_and_puts_trace_ids_in_logs(make_settings, make_client, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(observability=ObservabilitySettings(log_format="json", otel_enabled=True))
    exporter = InMemorySpanExporter()
    app = create_app(settings, routers=[routes.router], telemetry=telemetry_config(settings, exporter))
    client = await make_client(app)
    logged(capsys)
    response = await client.get("/test/items/7")
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    server_span = next(span for span in spans if span.attributes and span.attributes.get("http.route"))
    assert server_span.attributes is not None
    assert server_span.attributes["http.route"] == "/test/items/{item_id}"
    access = next(line for line in json_lines(logged(capsys)) if line["event"] == "http.request")
    assert access["trace_id"] == format(server_span.context.trace_id, "032x")
    # API routes too: with tracing on they go through FastAPI's routing (see core.dispatch).
    assert (await client.get("/api/v1/me")).status_code == 401
    routes_traced = {span.attributes.get("http.route") for span in exporter.get_finished_spans() if span.attributes}
    assert "/api/v1/me" in routes_traced


def test_tracing_disabled_by_default(settings) -> None:  # type: ignore[no-untyped-def]
    assert telemetry_config(settings)["tracing"] is False


async def test_lines_logged_on_the_loop_go_out_together_on_its_next_pass(make_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from keel.core.logging import configure_logging, get_logger

    configure_logging(make_settings(observability=ObservabilitySettings(log_format="json")))
    log = get_logger("keel.test")
    logged(capsys)
    log.info("first")
    log.warning("second")
    assert capsys.readouterr().err == ""  # held: one write() for all of this pass's lines
    await asyncio.sleep(0)
    assert [line["event"] for line in json_lines(capsys.readouterr().err)] == ["first", "second"]


def test_lines_logged_off_the_loop_are_written_at_once(make_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from keel.core.logging import configure_logging, get_logger

    configure_logging(make_settings(observability=ObservabilitySettings(log_format="json")))
    get_logger("keel.test").info("at.once")
    assert json_lines(capsys.readouterr().err)[-1]["event"] == "at.once"


def test_log_timestamps_are_utc_iso_8601_with_microseconds(make_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from keel.core.logging import configure_logging, get_logger

    configure_logging(make_settings(observability=ObservabilitySettings(log_format="json")))
    before = datetime.now(UTC)
    get_logger("keel.test").info("stamped")
    stamp = str(json_lines(capsys.readouterr().err)[-1]["timestamp"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(stamp) <= datetime.now(UTC)
