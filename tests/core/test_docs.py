"""API docs work offline and the OpenAPI document is valid 3.1."""

from __future__ import annotations

import re

import httpx
import pytest
from openapi_spec_validator import validate

from keel.main import create_app


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


async def test_the_docs_page_answers_head_as_get(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/openapi.json"):
        head = await client.head(path)
        assert head.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == (await client.get(path)).headers["content-type"]


@pytest.mark.readiness("docs.openapi")
async def test_openapi_is_valid_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert "/health/ready" in document["paths"]
    assert "/metrics" in document["paths"]


async def test_authenticated_operations_declare_their_security(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    paths = document["paths"]
    assert paths["/api/v1/me"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "security" in paths["/api/v1/orgs/{org_id}/members"]["post"]
    assert "security" not in paths["/api/v1/auth/login"]["post"]
    assert "security" not in paths["/health/live"]["get"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation.get("description") or operation.get("summary"), f"{method} {path} undocumented"
            if path.startswith("/api/v1/orgs/{org_id}"):
                assert {"401", "403", "404"} <= set(operation["responses"]), f"{method} {path}"


async def test_every_schema_is_described(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(create_app(make_settings()))
    spec = (await client.get("/openapi.json")).json()
    undescribed = [name for name, schema in spec["components"]["schemas"].items() if not schema.get("description")]
    assert undescribed == []
    task_update = spec["components"]["schemas"]["TaskUpdate"]["description"]
    assert task_update.startswith("Only the fields sent change")
