"""partial indexes over live rows, so list pages read in index order

Lists filter ``deleted_at IS NULL``. PostgreSQL does not treat that filter as
fixing ``deleted_at`` inside an index on (org_id, deleted_at, sort, id), so
those indexes could not supply the order: every page sorted the whole org.
Partial indexes WHERE deleted_at IS NULL can.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "deleted_at IS NULL"
# (table, old name, new name, sort column)
CHANGES = [
    ("tasks", "ix_tasks_org_live_created", "ix_tasks_live_created", "created_at"),
    ("tasks", "ix_tasks_org_live_updated", "ix_tasks_live_updated", "updated_at"),
    ("tasks", "ix_tasks_org_live_priority", "ix_tasks_live_priority", "priority"),
    ("projects", "ix_projects_org_live_created", "ix_projects_live_created", "created_at"),
    ("reports", "ix_reports_org_live_created", "ix_reports_live_created", "created_at"),
    ("bookmarks", "ix_bookmarks_org_live_created", "ix_bookmarks_live_created", "created_at"),
]


def upgrade() -> None:
    for table, old, new, column in CHANGES:
        op.drop_index(old, table_name=table)
        op.create_index(
            new,
            table,
            ["org_id", column, "id"],
            postgresql_where=sa.text(LIVE),
            sqlite_where=sa.text(LIVE),
        )


def downgrade() -> None:
    for table, old, new, column in CHANGES:
        op.drop_index(new, table_name=table)
        op.create_index(old, table, ["org_id", "deleted_at", column, "id"])
