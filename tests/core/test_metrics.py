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


async def test_the_docs_their_assets_and_the_openapi_document_are_labelled_by_template(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/openapi.json", "/docs", "/static/docs/swagger-ui.css", "/static/docs/swagger-ui-bundle.js"):
        assert (await client.get(path)).status_code == 200, path
    text = (await client.get("/metrics")).text
    for template in ("/openapi.json", "/docs", "/static/docs/{path}"):
        assert f'method="GET",route="{template}",status_class="2xx"' in text, template
    assert "swagger-ui.css" not in text
    assert 'route="<unmatched>",status_class="2xx"' not in text


@pytest.mark.readiness("observability.metrics_exposure")
async def test_metrics_and_docs_can_be_turned_off(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(http=HttpSettings(expose_metrics=False, expose_docs=False))
    client = await make_client(create_app(settings))
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 404


def test_latency_histogram_is_cumulative_with_inclusive_bounds() -> None:
    """Prometheus semantics: a bucket counts observations <= its bound, each
    bucket includes the ones below, +Inf equals the count; sum and created
    time per series, as prometheus_client's own Histogram exposes them."""
    from prometheus_client.parser import text_string_to_metric_families

    from keel.core.metrics import Metrics

    metrics = Metrics()
    for seconds in (0.0004, 0.001, 0.003, 0.25, 30.0):
        metrics.observe("GET", "/things/{id}", 200, seconds)
    metrics.observe("POST", "/things", 503, 0.002)
    text = metrics.render().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}

    get = {"method": "GET", "route": "/things/{id}", "status_class": "2xx"}
    samples = families["keel_http_request_duration_seconds"].samples
    of_get = [s for s in samples if s.labels.items() >= get.items()]
    buckets = {s.labels["le"]: s.value for s in of_get if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 2  # 0.001 itself is in the 0.001 bucket
    assert buckets["0.0025"] == 2
    assert buckets["0.005"] == 3
    assert buckets["0.25"] == 4
    assert buckets["10.0"] == 4
    assert buckets["+Inf"] == 5
    assert list(buckets.values()) == sorted(buckets.values())
    totals = {s.name: s.value for s in samples if s.labels == get}
    assert totals["keel_http_request_duration_seconds_count"] == 5
    assert totals["keel_http_request_duration_seconds_sum"] == pytest.approx(30.2544)
    assert 'keel_http_request_duration_seconds_created{method="GET",route="/things/{id}",status_class="2xx"}' in text
    assert 'keel_http_requests_created{method="GET",route="/things/{id}",status_class="2xx"}' in text

    requests = {
        (s.labels["method"], s.labels["status_class"]): s.value
        for s in families["keel_http_requests"].samples
        if s.name == "keel_http_requests_total"
    }
    assert requests == {("GET", "2xx"): 5, ("POST", "5xx"): 1}
