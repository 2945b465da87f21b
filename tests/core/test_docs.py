"""API docs work offline and the OpenAPI document is valid 3.1."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate


@pytest.mark.readiness("docs.offline")
async def test_docs_page_uses_only_local_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert assets, "the docs page references no assets"
    for asset in assets:
        assert asset.startswith("/"), f"external asset {asset}"
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100
    assert "cdn" not in response.text.lower()


@pytest.mark.readiness("docs.openapi")
async def test_openapi_is_valid_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert "/health/ready" in document["paths"]
    assert "/metrics" in document["paths"]
