from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.models import Base, IdMixin, TimestampMixin
from keel.realtime.keys import PUBLIC_KEY_BYTES

DEVICE_TYPES = ("phone", "tablet", "desktop", "web", "server")


class Device(IdMixin, TimestampMixin, Base):
    """One of a user's devices: it proves who it is by signing the server's
    challenge with the private half of ``public_key``."""

    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint("type IN ('phone', 'tablet', 'desktop', 'web', 'server')", name="type_known"),
        CheckConstraint(f"length(public_key) = {PUBLIC_KEY_BYTES}", name="public_key_length"),
        # A revoked device's name is free again.
        Index(
            "uq_devices_user_id_name_live",
            "user_id",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
            sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(PUBLIC_KEY_BYTES))
    key_rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    last_connected_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
