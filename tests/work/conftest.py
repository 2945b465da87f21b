"""Fixtures shared by work's resource tests."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import Account, register


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    """A fresh account, owner of its personal organization."""
    return await register(client)
