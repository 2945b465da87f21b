"""The README's Python device client, run as printed against a live keel."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.accounts import API, PASSWORD, unique_email
from tests.fixtures.servers import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Realtime: a user's devices in sync"
PRINTED_BASE = 'BASE = "http://127.0.0.1:8000"'


def client_code(base_url: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION + "\n")
    found = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert found, "no python block in the realtime section"
    assert PRINTED_BASE in found.group(1)
    return found.group(1).replace(PRINTED_BASE, f'BASE = "{base_url}"')


async def test_the_readme_device_client_runs_as_printed(
    live_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        registered = await http.post(
            f"{API}/auth/register",
            json={"email": unique_email("readme"), "password": PASSWORD, "name": "Ada"},
        )
        assert registered.status_code == 201, registered.text
    namespace: dict[str, Any] = {}
    exec(compile(client_code(live_server.base_url), "README.md", "exec"), namespace)
    await namespace["main"](registered.json()["access_token"])
    assert "{'text': 'hello from the laptop'}" in capsys.readouterr().out
