"""Create the hotline's work orders: the orders, their append-only events, the results owed to 12345, and the
holiday years an operator set.

Revision ID: 20261205_0720
Revises: 20261205_0710
Create Date: 2026-12-05 07:20:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0720"
down_revision: str | None = "20261205_0710"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("city_12345", "province_12345", "self_received")
CATEGORIES = ("consultation", "help", "complaint", "urgent")
EVENT_KINDS = ("received", "dispatched", "reminded", "extension_requested", "extension_approved",
               "extension_refused", "replied", "closed", "result_returned", "callback", "reopened")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "hotline_work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intake_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_order_id", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("source_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(_in("source", SOURCES), name=op.f("ck_hotline_work_orders_source")),
        sa.CheckConstraint(_in("category", CATEGORIES), name=op.f("ck_hotline_work_orders_category")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_hotline_work_orders_organization_id_organizations")),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_work_orders_call_id_hotline_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_work_orders")),
        sa.UniqueConstraint("intake_key", name=op.f("uq_hotline_work_orders_intake_key")),
    )
    op.create_index("ix_hotline_work_orders_organization_id", "hotline_work_orders", ["organization_id", "id"])
    op.create_index("ix_hotline_work_orders_received_at", "hotline_work_orders", ["received_at"])
    op.create_table(
        "hotline_work_order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.CheckConstraint(_in("kind", EVENT_KINDS), name=op.f("ck_hotline_work_order_events_kind")),
        sa.ForeignKeyConstraint(["work_order_id"], ["hotline_work_orders.id"],
                                name=op.f("fk_hotline_work_order_events_work_order_id_hotline_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_work_order_events")),
        sa.UniqueConstraint("work_order_id", "seq", name=op.f("uq_hotline_work_order_events_work_order_id_seq")),
        sa.UniqueConstraint("work_order_id", "request_key",
                            name=op.f("uq_hotline_work_order_events_work_order_id_request_key")),
    )
    op.create_index("ix_hotline_work_order_events_kind_at", "hotline_work_order_events", ["kind", "at"])
    op.create_table(
        "hotline_work_order_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("close_seq", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=160), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent')", name=op.f("ck_hotline_work_order_results_status")),
        sa.ForeignKeyConstraint(["work_order_id"], ["hotline_work_orders.id"],
                                name=op.f("fk_hotline_work_order_results_work_order_id_hotline_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_work_order_results")),
        sa.UniqueConstraint("work_order_id", "close_seq",
                            name=op.f("uq_hotline_work_order_results_work_order_id_close_seq")),
        sa.UniqueConstraint("reference", name=op.f("uq_hotline_work_order_results_reference")),
    )
    op.create_index("ix_hotline_work_order_results_status_next_attempt_at", "hotline_work_order_results",
                    ["status", "next_attempt_at"])
    op.create_table(
        "hotline_holiday_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("set_by", sa.String(length=96), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_hotline_holiday_years")),
    )
    op.create_table(
        "hotline_holiday_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_hotline_holiday_days_kind")),
        sa.ForeignKeyConstraint(["year"], ["hotline_holiday_years.year"],
                                name=op.f("fk_hotline_holiday_days_year_hotline_holiday_years")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_hotline_holiday_days")),
    )
    op.create_index("ix_hotline_holiday_days_year", "hotline_holiday_days", ["year"])


def downgrade() -> None:
    op.drop_index("ix_hotline_holiday_days_year", table_name="hotline_holiday_days")
    op.drop_table("hotline_holiday_days")
    op.drop_table("hotline_holiday_years")
    op.drop_index("ix_hotline_work_order_results_status_next_attempt_at", table_name="hotline_work_order_results")
    op.drop_table("hotline_work_order_results")
    op.drop_index("ix_hotline_work_order_events_kind_at", table_name="hotline_work_order_events")
    op.drop_table("hotline_work_order_events")
    op.drop_index("ix_hotline_work_orders_received_at", table_name="hotline_work_orders")
    op.drop_index("ix_hotline_work_orders_organization_id", table_name="hotline_work_orders")
    op.drop_table("hotline_work_orders")
