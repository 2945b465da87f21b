"""Prometheus metrics with bounded labels, pool gauges and process metrics."""

from __future__ import annotations

import httpx
import pytest

from keel.config import HttpSettings
from keel.main import create_app


@pytest.mark.readiness("observability.metrics")
async def test_metrics_label_by_route_template(client: httpx.AsyncClient) -> None:
    for item in (1, 2, 3):
        assert (await client.get(f"/test/items/{item}")).status_code == 200
    await client.get("/unknown/path/xyz")
    for invented in ("BREW", "PROPFIND-X1", "PROPFIND-X2"):
        await client.request(invented, "/test/items/1")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'keel_http_requests_total{method="GET",route="/test/items/{item_id}",status_class="2xx"} 3.0' in text
    assert 'route="<unmatched>",status_class="4xx"' in text
    assert "/test/items/1" not in text
    assert "/unknown/path/xyz" not in text
    # Clients choose methods; invented ones share one series instead of adding their own.
    assert 'method="OTHER"' in text
    assert "BREW" not in text
    assert "PROPFIND" not in text
    assert "keel_http_request_duration_seconds_bucket" in text
    assert "keel_db_pool_size" in text
    assert "keel_db_pool_checked_out" in text
    assert "process_cpu_seconds_total" in text
    assert "python_gc_objects_collected_total" in text


@pytest.mark.readiness("observability.metrics_exposure")
async def test_metrics_and_docs_can_be_turned_off(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(http=HttpSettings(expose_metrics=False, expose_docs=False))
    client = await make_client(create_app(settings))
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 404
