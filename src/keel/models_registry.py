"""Every table keel owns, imported in one place for Alembic and the tests."""

from __future__ import annotations

from keel.core import outbox
from keel.core.models import Base

metadata = Base.metadata

__all__ = ["metadata", "outbox"]
