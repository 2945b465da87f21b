"""full-text indexes led by the org, over live rows (PostgreSQL)

Every search is scoped to one org and its live rows. A GIN index on the
vector alone yields a bitmap of every org's matches for a common word, which
the org filter then throws away row by row. A GIN index on (org_id, vector)
WHERE deleted_at IS NULL (``btree_gin`` gives uuid its GIN operator class)
yields only the org's live matches. SQLite's FTS5 tables are unchanged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("tasks", "projects", "reports", "bookmarks")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # A trusted extension: the database's owner may create it without superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_search_vector")
        op.execute(
            f"CREATE INDEX ix_{table}_org_search_vector ON {table} "
            "USING gin (org_id, search_vector) WHERE deleted_at IS NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other objects in the database may use it.
    for table in TABLES:
        op.execute(f"DROP INDEX ix_{table}_org_search_vector")
        op.execute(f"CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)")
