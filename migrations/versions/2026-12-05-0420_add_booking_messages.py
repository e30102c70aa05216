"""Booking messages: per-hospital message settings, one message of a kind per booking, lapsed messages.

Revision ID: 20261205_0420
Revises: 20261126_0400
Create Date: 2026-12-05 04:20:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0420"
down_revision: str | None = "20261126_0400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUSES = "status IN ('pending', 'sent', 'failed', 'no_phone')"
_NEW_STATUSES = "status IN ('pending', 'sent', 'failed', 'no_phone', 'lapsed')"


def upgrade() -> None:
    op.create_table(
        "booking_message_settings",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("confirmation_enabled", sa.Boolean(), nullable=False),
        sa.Column("cancellation_enabled", sa.Boolean(), nullable=False),
        sa.Column("reminder_enabled", sa.Boolean(), nullable=False),
        sa.Column("reminder_time", sa.Time(), nullable=False),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"],
            name=op.f("fk_booking_message_settings_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_booking_message_settings")),
    )
    with op.batch_alter_table("booking_notifications") as batch:
        batch.drop_constraint(op.f("ck_booking_notifications_status"), type_="check")
        batch.create_check_constraint(op.f("ck_booking_notifications_status"), sa.text(_NEW_STATUSES))
    op.create_index(
        "uq_booking_notifications_booking_id_kind", "booking_notifications", ["booking_id", "kind"], unique=True,
        sqlite_where=sa.text("booking_id IS NOT NULL"), postgresql_where=sa.text("booking_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_booking_notifications_booking_id_kind", table_name="booking_notifications")
    op.execute("UPDATE booking_notifications SET status = 'failed' WHERE status = 'lapsed'")
    with op.batch_alter_table("booking_notifications") as batch:
        batch.drop_constraint(op.f("ck_booking_notifications_status"), type_="check")
        batch.create_check_constraint(op.f("ck_booking_notifications_status"), sa.text(_OLD_STATUSES))
    op.drop_table("booking_message_settings")
