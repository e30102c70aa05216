"""Add a covering index for the slot feed's validator: a conditional request answered from the index.

Revision ID: 20261205_0510
Revises: 20261205_0430
Create Date: 2026-12-05 05:10:00 UTC
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261205_0510"
down_revision: str | None = "20261205_0430"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_booking_sessions_service_date_feed", "booking_sessions", ["service_date"],
                    postgresql_include=["released_at", "starts_at", "updated_at", "booked", "status"])


def downgrade() -> None:
    op.drop_index("ix_booking_sessions_service_date_feed", table_name="booking_sessions")
