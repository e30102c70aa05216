"""Create the hotline's call tables: city lines, calls, their events, agents' changes, crisis follow-ups.

Revision ID: 20261205_0700
Revises: 20261126_0230
Create Date: 2026-12-05 07:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0700"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = ("hotline",)
depends_on: str | Sequence[str] | None = None

CATEGORIES = ("consultation", "complaint", "phone_booking", "manual_service", "crisis_intervention",
              "self_service_voice")
OUTCOMES = ("resolved", "transferred", "call_back", "abandoned", "self_served")
EVENT_KINDS = ("start", "ivr", "queue", "answer", "end")
CALL_STATES = ("partial", "started", "in_ivr", "queued", "answered", "ended")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "hotline_city_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line", sa.String(length=32), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("city_name", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_city_lines")),
        sa.UniqueConstraint("line", name=op.f("uq_hotline_city_lines_line")),
    )
    op.create_table(
        "hotline_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telephony_call_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("city_line_id", sa.Integer(), nullable=True),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("start_hour", sa.SmallInteger(), nullable=True),
        sa.Column("ivr_path", sa.String(length=400), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent", sa.String(length=96), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller_hash", sa.String(length=64), nullable=True),
        sa.Column("caller_cipher", sa.Text(), nullable=True),
        sa.Column("reported_category", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("classified_by", sa.String(length=96), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in("state", CALL_STATES), name=op.f("ck_hotline_calls_state")),
        sa.CheckConstraint(f"category IS NULL OR {_in('category', CATEGORIES)}", name=op.f("ck_hotline_calls_category")),
        sa.CheckConstraint(f"reported_category IS NULL OR {_in('reported_category', CATEGORIES)}",
                           name=op.f("ck_hotline_calls_reported_category")),
        sa.CheckConstraint(f"outcome IS NULL OR {_in('outcome', OUTCOMES)}", name=op.f("ck_hotline_calls_outcome")),
        sa.ForeignKeyConstraint(["city_line_id"], ["hotline_city_lines.id"],
                                name=op.f("fk_hotline_calls_city_line_id_hotline_city_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_calls")),
        sa.UniqueConstraint("telephony_call_id", name=op.f("uq_hotline_calls_telephony_call_id")),
    )
    op.create_index("ix_hotline_calls_business_date_city_code", "hotline_calls", ["business_date", "city_code"])
    op.create_index("ix_hotline_calls_agent_started_at", "hotline_calls", ["agent", "started_at"])
    op.create_index("ix_hotline_calls_caller_hash", "hotline_calls", ["caller_hash"])
    op.create_table(
        "hotline_call_events",
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_in("kind", EVENT_KINDS), name=op.f("ck_hotline_call_events_kind")),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_call_events_call_id_hotline_calls")),
        sa.PrimaryKeyConstraint("call_id", "event_id", name=op.f("pk_hotline_call_events")),
    )
    op.create_table(
        "hotline_call_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("category_from", sa.String(length=32), nullable=True),
        sa.Column("category_to", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('annotation', 'reclassification')", name=op.f("ck_hotline_call_changes_kind")),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_call_changes_call_id_hotline_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_call_changes")),
        sa.UniqueConstraint("call_id", "request_key", name=op.f("uq_hotline_call_changes_call_id_request_key")),
    )
    op.create_table(
        "hotline_crisis_follow_ups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=96), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'done', 'cancelled')", name=op.f("ck_hotline_crisis_follow_ups_status")),
        sa.ForeignKeyConstraint(["call_id"], ["hotline_calls.id"],
                                name=op.f("fk_hotline_crisis_follow_ups_call_id_hotline_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_crisis_follow_ups")),
        sa.UniqueConstraint("call_id", name=op.f("uq_hotline_crisis_follow_ups_call_id")),
    )
    op.create_index("ix_hotline_crisis_follow_ups_status_due_at", "hotline_crisis_follow_ups", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_hotline_crisis_follow_ups_status_due_at", table_name="hotline_crisis_follow_ups")
    op.drop_table("hotline_crisis_follow_ups")
    op.drop_table("hotline_call_changes")
    op.drop_table("hotline_call_events")
    op.drop_index("ix_hotline_calls_caller_hash", table_name="hotline_calls")
    op.drop_index("ix_hotline_calls_agent_started_at", table_name="hotline_calls")
    op.drop_index("ix_hotline_calls_business_date_city_code", table_name="hotline_calls")
    op.drop_table("hotline_calls")
    op.drop_table("hotline_city_lines")
