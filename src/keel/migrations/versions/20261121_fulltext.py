"""fulltext: FTS5 (SQLite) or tsvector + GIN (PostgreSQL) on tasks and projects

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

from keel.core import fulltext

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE = {"tasks": ["title", "description"], "projects": ["name", "description"]}


def upgrade() -> None:
    fulltext.add_indexes(op, SEARCHABLE)


def downgrade() -> None:
    fulltext.remove_indexes(op, SEARCHABLE)
