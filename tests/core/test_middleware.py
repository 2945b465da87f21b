"""Security headers, CORS, access log and client addresses."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from keel.config import HttpSettings
from keel.core.network import client_ip
from keel.main import create_app
from tests.fixtures import routes


@pytest.mark.readiness("http.security_headers")
async def test_security_headers_on_success_and_error(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/health/live"), await client.get("/missing")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "strict-transport-security" not in response.headers


async def test_only_the_docs_page_may_run_its_scripts_and_styles(client: httpx.AsyncClient) -> None:
    """Swagger UI needs its bootstrap script and styles; JSON answers need nothing."""
    docs = (await client.get("/docs")).headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in docs
    assert "frame-ancestors 'none'" in docs
    for path in ("/openapi.json", "/static/docs/swagger-ui-bundle.js"):
        assert (await client.get(path)).headers[
            "content-security-policy"
        ] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.readiness("http.hsts")
async def test_hsts_when_configured(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(create_app(make_settings(http=HttpSettings(hsts_max_age_s=31536000))))
    response = await client.get("/health/live")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.readiness("http.cors")
async def test_cors_allows_only_configured_origins(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(http=HttpSettings(cors_origins=["https://app.example.com"]))
    client = await make_client(create_app(settings, routers=[routes.router]))
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    allowed = await client.options("/test/echo", headers={"origin": "https://app.example.com", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    denied = await client.options("/test/echo", headers={"origin": "https://evil.example.net", **preflight})
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = await client.get("/health/live", headers={"origin": "https://app.example.com"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    # Refusals by the request limits carry CORS headers too, so a browser can read them.
    refused = await client.post(
        "/test/echo", content=b"name=x", headers={"origin": "https://app.example.com", "content-type": "text/plain"}
    )
    assert refused.status_code == 415
    assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    assert refused.headers["x-request-id"]


@pytest.mark.readiness("logging.access_log")
async def test_access_log_has_template_status_duration_and_no_secrets(
    client: httpx.AsyncClient, log_lines: Callable[[], str]
) -> None:
    await client.post(
        "/test/echo?token=query-secret",
        json={"name": "body-secret"},
        headers={"authorization": "Bearer header-secret", "x-request-id": "log-1"},
    )
    await client.get("/test/items/12345")
    logged = log_lines()
    access = [line for line in logged.splitlines() if "http.request" in line]
    assert any("route=/test/echo" in line and "status=200" in line for line in access)
    assert any("route=/test/items/{item_id}" in line for line in access)
    assert all("duration_ms=" in line and "method=" in line for line in access)
    for secret in ("query-secret", "body-secret", "header-secret", "12345"):
        assert secret not in logged


@pytest.mark.readiness("http.trusted_proxies")
def test_forwarded_for_is_honoured_only_from_trusted_proxies() -> None:
    def scope(peer: str, forwarded: str | None) -> dict[str, object]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    trusted = frozenset({"10.0.0.1", "10.0.0.2"})
    assert client_ip(scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    assert client_ip(scope("10.0.0.1", "1.2.3.4"), trusted) == "1.2.3.4"
    # A client-supplied entry to the left of the real hop is ignored.
    assert client_ip(scope("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2"), trusted) == "1.2.3.4"
    assert client_ip(scope("10.0.0.1", None), trusted) == "10.0.0.1"
