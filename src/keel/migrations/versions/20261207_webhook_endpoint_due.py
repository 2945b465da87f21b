"""webhook deliveries found due per endpoint

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_endpoint_due", "webhook_deliveries", ["endpoint_id", "status", "next_attempt_at"]
    )
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")


def downgrade() -> None:
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.drop_index("ix_webhook_deliveries_endpoint_due", table_name="webhook_deliveries")
