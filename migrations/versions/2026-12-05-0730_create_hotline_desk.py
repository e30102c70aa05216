"""Create the agent desk's tables: the caller identified in a call, the bookings made in calls, call-backs.

Revision ID: 20261205_0730
Revises: 20261205_0720
Create Date: 2026-12-05 07:30:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0730"
down_revision: str | None = "20261205_0720"
branch_labels: str | Sequence[str] | None = None
# The bookings and the booking room's call-back list, which the desk's rows refer to.
depends_on: str | Sequence[str] | None = "20261126_0400"


def upgrade() -> None:
    op.create_table(
        "hotline_call_callers",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("identified_by", sa.String(length=96), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("identified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_call_callers_call_id_hotline_calls")),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"],
                                name=op.f("fk_hotline_call_callers_resident_id_residents")),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_hotline_call_callers")),
    )
    op.create_index(op.f("ix_hotline_call_callers_resident_id"), "hotline_call_callers", ["resident_id"],
                    unique=False)
    op.create_table(
        "hotline_call_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("agent", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('book', 'cancel', 'reschedule')", name=op.f("ck_hotline_call_bookings_action")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"],
                                name=op.f("fk_hotline_call_bookings_booking_id_bookings")),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_call_bookings_call_id_hotline_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_call_bookings")),
        sa.UniqueConstraint("call_id", "booking_id", "action",
                            name=op.f("uq_hotline_call_bookings_call_id_booking_id_action")),
    )
    op.create_index("ix_hotline_call_bookings_booking_id", "hotline_call_bookings", ["booking_id"], unique=False)
    op.create_table(
        "hotline_callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("agent", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('reached', 'not_reached')", name=op.f("ck_hotline_callback_attempts_outcome")),
        sa.ForeignKeyConstraint(["callback_id"], ["booking_callbacks.id"],
                                name=op.f("fk_hotline_callback_attempts_callback_id_booking_callbacks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_callback_attempts")),
        sa.UniqueConstraint("callback_id", "request_key",
                            name=op.f("uq_hotline_callback_attempts_callback_id_request_key")),
    )
    op.create_index(op.f("ix_hotline_callback_attempts_callback_id"), "hotline_callback_attempts",
                    ["callback_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_hotline_callback_attempts_callback_id"), table_name="hotline_callback_attempts")
    op.drop_table("hotline_callback_attempts")
    op.drop_index("ix_hotline_call_bookings_booking_id", table_name="hotline_call_bookings")
    op.drop_table("hotline_call_bookings")
    op.drop_index(op.f("ix_hotline_call_callers_resident_id"), table_name="hotline_call_callers")
    op.drop_table("hotline_call_callers")
