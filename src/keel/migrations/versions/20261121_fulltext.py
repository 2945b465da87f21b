"""fulltext: FTS5 (SQLite) or tsvector + GIN (PostgreSQL) on tasks and projects

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

from keel.core.fulltext import create_index_sql, drop_index_sql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHABLE = {"tasks": ["title", "description"], "projects": ["name", "description"]}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, columns in SEARCHABLE.items():
        for statement in create_index_sql(dialect, table, columns):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in SEARCHABLE:
        for statement in drop_index_sql(dialect, table):
            op.execute(statement)
