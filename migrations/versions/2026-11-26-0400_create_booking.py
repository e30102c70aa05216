"""Create the booking tables: release policies, templates, sessions (号源 pools), bookings, resident-day
locks, idempotency keys, sanctions, waitlist, notification outbox, call-back list and statistics counters.

The partial unique indexes on bookings (active rows only) make a double booking impossible in the database
itself: one active booking per resident, department and day, and per session slot number.

Revision ID: 20261126_0400
Revises: 20261126_0230
Create Date: 2026-11-26 04:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0400"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = ("booking",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=96), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_idempotency_keys")),
        sa.UniqueConstraint("subject", "key", name=op.f("uq_booking_idempotency_keys_subject_key")),
    )
    op.create_index(
        op.f("ix_booking_idempotency_keys_expires_at"), "booking_idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "booking_opening_balances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("bookings", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=96), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_opening_balances")),
        sa.UniqueConstraint("as_of", name=op.f("uq_booking_opening_balances_as_of")),
    )
    op.create_table(
        "booking_sanction_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("no_show_threshold", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("ban_days", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("no_show_threshold >= 1", name=op.f("ck_booking_sanction_rules_threshold")),
        sa.CheckConstraint("window_days >= 1 AND ban_days >= 1", name=op.f("ck_booking_sanction_rules_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_sanction_rules")),
    )
    op.create_table(
        "booking_release_policies",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("release_time", sa.Time(), nullable=False),
        sa.Column("same_day_allowed", sa.Boolean(), nullable=False),
        sa.Column("next_day_cutoff", sa.Time(), nullable=False),
        sa.Column("cancellation_allowed", sa.Boolean(), nullable=False),
        sa.Column("cancel_cutoff_days_before", sa.Integer(), nullable=False),
        sa.Column("cancel_cutoff_time", sa.Time(), nullable=False),
        sa.Column("pickup_grace_minutes", sa.Integer(), nullable=False),
        sa.Column("hold_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cancel_cutoff_days_before BETWEEN 0 AND 30",
            name=op.f("ck_booking_release_policies_cancel_cutoff_days_before"),
        ),
        sa.CheckConstraint("hold_minutes BETWEEN 1 AND 15", name=op.f("ck_booking_release_policies_hold_minutes")),
        sa.CheckConstraint(
            "pickup_grace_minutes BETWEEN 0 AND 720", name=op.f("ck_booking_release_policies_pickup_grace_minutes")
        ),
        sa.CheckConstraint("window_days BETWEEN 1 AND 90", name=op.f("ck_booking_release_policies_window_days")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_booking_release_policies_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_booking_release_policies")),
    )
    op.create_table(
        "booking_resident_days",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_booking_resident_days_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("resident_id", "service_date", name=op.f("pk_booking_resident_days")),
    )
    op.create_table(
        "booking_sanctions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("no_show_count", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=96), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_booking_sanctions_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_sanctions")),
    )
    op.create_index(op.f("ix_booking_sanctions_resident_id"), "booking_sanctions", ["resident_id"], unique=False)
    op.create_table(
        "booking_stats_monthly",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("client_app_id", sa.Integer(), nullable=False),
        sa.Column("bookings", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_booking_stats_monthly_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "month", "channel", "client_app_id", name=op.f("pk_booking_stats_monthly")
        ),
    )
    op.create_table(
        "booking_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("practitioner_id", sa.Integer(), nullable=True),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("fee_class", sa.String(length=16), nullable=False),
        sa.Column("quota_online_12320", sa.Integer(), nullable=True),
        sa.Column("quota_phone", sa.Integer(), nullable=True),
        sa.Column("quota_clinic", sa.Integer(), nullable=True),
        sa.Column("quota_third_party", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fee_class IN ('general', 'expert', 'special_needs')", name=op.f("ck_booking_templates_fee_class")
        ),
        sa.CheckConstraint("capacity BETWEEN 1 AND 2000", name=op.f("ck_booking_templates_capacity")),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name=op.f("ck_booking_templates_weekday")),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_booking_templates_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_booking_templates_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_booking_templates_practitioner_id_practitioners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_templates")),
    )
    op.create_index(
        op.f("ix_booking_templates_organization_id"), "booking_templates", ["organization_id"], unique=False
    )
    op.create_table(
        "booking_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("practitioner_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pickup_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fee_class", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("slot_map", sa.Text(), nullable=False),
        sa.Column("last_slot_no", sa.Integer(), nullable=False),
        sa.Column("open_capacity", sa.Integer(), nullable=False),
        sa.Column("open_booked", sa.Integer(), nullable=False),
        sa.Column("quota_online_12320", sa.Integer(), nullable=True),
        sa.Column("quota_phone", sa.Integer(), nullable=True),
        sa.Column("quota_clinic", sa.Integer(), nullable=True),
        sa.Column("quota_third_party", sa.Integer(), nullable=True),
        sa.Column("booked_online_12320", sa.Integer(), nullable=False),
        sa.Column("booked_phone", sa.Integer(), nullable=False),
        sa.Column("booked_clinic", sa.Integer(), nullable=False),
        sa.Column("booked_third_party", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("suspended_reason", sa.String(length=255), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fee_class IN ('general', 'expert', 'special_needs')", name=op.f("ck_booking_sessions_fee_class")
        ),
        sa.CheckConstraint("status IN ('open', 'suspended')", name=op.f("ck_booking_sessions_status")),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name=op.f("ck_booking_sessions_booked")),
        sa.CheckConstraint("capacity BETWEEN 1 AND 2000", name=op.f("ck_booking_sessions_capacity")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_booking_sessions_time_range")),
        sa.CheckConstraint(
            "open_booked >= 0 AND open_booked <= open_capacity", name=op.f("ck_booking_sessions_open_booked")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_booking_sessions_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_booking_sessions_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_booking_sessions_practitioner_id_practitioners")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["booking_templates.id"], name=op.f("fk_booking_sessions_template_id_booking_templates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_sessions")),
        sa.UniqueConstraint(
            "organization_id", "external_id", name=op.f("uq_booking_sessions_organization_id_external_id")
        ),
    )
    op.create_index(
        "ix_booking_sessions_department_id_service_date",
        "booking_sessions",
        ["department_id", "service_date"],
        unique=False,
    )
    op.create_index(
        "ix_booking_sessions_organization_id_service_date",
        "booking_sessions",
        ["organization_id", "service_date"],
        unique=False,
    )
    op.create_index(op.f("ix_booking_sessions_practitioner_id"), "booking_sessions", ["practitioner_id"], unique=False)
    op.create_index(op.f("ix_booking_sessions_updated_at"), "booking_sessions", ["updated_at"], unique=False)
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot_no", sa.Integer(), nullable=False),
        sa.Column("estimated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("client_app_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=48), nullable=True),
        sa.Column("rescheduled_to_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('online_12320', 'phone', 'clinic', 'third_party')", name=op.f("ck_bookings_channel")
        ),
        sa.CheckConstraint(
            "status IN ('held', 'booked', 'checked_in', 'cancelled', 'expired', 'no_show', 'rescheduled')",
            name=op.f("ck_bookings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_app_id"], ["client_apps.id"], name=op.f("fk_bookings_client_app_id_client_apps")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_bookings_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_bookings_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_bookings_resident_id_residents")),
        sa.ForeignKeyConstraint(
            ["session_id"], ["booking_sessions.id"], name=op.f("fk_bookings_session_id_booking_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_resident_id_service_date", "bookings", ["resident_id", "service_date"], unique=False)
    op.create_index("ix_bookings_session_id_status", "bookings", ["session_id", "status"], unique=False)
    op.create_index("ix_bookings_status_hold_expires_at", "bookings", ["status", "hold_expires_at"], unique=False)
    op.create_index(
        "uq_bookings_resident_department_day",
        "bookings",
        ["resident_id", "department_id", "service_date"],
        unique=True,
        sqlite_where=sa.text("status IN ('held', 'booked', 'checked_in')"),
        postgresql_where=sa.text("status IN ('held', 'booked', 'checked_in')"),
    )
    op.create_index(
        "uq_bookings_session_slot",
        "bookings",
        ["session_id", "slot_no"],
        unique=True,
        sqlite_where=sa.text("status IN ('held', 'booked', 'checked_in')"),
        postgresql_where=sa.text("status IN ('held', 'booked', 'checked_in')"),
    )
    op.create_table(
        "booking_callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("done_by", sa.String(length=96), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_booking_callbacks_status")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_booking_callbacks_booking_id_bookings")),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_booking_callbacks_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["booking_sessions.id"], name=op.f("fk_booking_callbacks_session_id_booking_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_callbacks")),
        sa.UniqueConstraint("booking_id", "reason", name=op.f("uq_booking_callbacks_booking_id_reason")),
    )
    op.create_index(op.f("ix_booking_callbacks_resident_id"), "booking_callbacks", ["resident_id"], unique=False)
    op.create_index(op.f("ix_booking_callbacks_session_id"), "booking_callbacks", ["session_id"], unique=False)
    op.create_table(
        "booking_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'no_phone')", name=op.f("ck_booking_notifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_booking_notifications_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_booking_notifications_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_notifications")),
    )
    op.create_index("ix_booking_notifications_status_id", "booking_notifications", ["status", "id"], unique=False)
    op.create_table(
        "booking_waitlist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("client_app_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offered_booking_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('online_12320', 'phone', 'clinic', 'third_party')", name=op.f("ck_booking_waitlist_channel")
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'expired', 'skipped', 'cancelled')",
            name=op.f("ck_booking_waitlist_status"),
        ),
        sa.ForeignKeyConstraint(
            ["client_app_id"], ["client_apps.id"], name=op.f("fk_booking_waitlist_client_app_id_client_apps")
        ),
        sa.ForeignKeyConstraint(
            ["offered_booking_id"], ["bookings.id"], name=op.f("fk_booking_waitlist_offered_booking_id_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_booking_waitlist_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["booking_sessions.id"], name=op.f("fk_booking_waitlist_session_id_booking_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_waitlist")),
    )
    op.create_index("ix_booking_waitlist_session_id_status", "booking_waitlist", ["session_id", "status"], unique=False)
    op.create_index(
        "uq_booking_waitlist_session_resident",
        "booking_waitlist",
        ["session_id", "resident_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('waiting', 'offered')"),
        postgresql_where=sa.text("status IN ('waiting', 'offered')"),
    )


def downgrade() -> None:
    op.drop_table("booking_waitlist")
    op.drop_table("booking_notifications")
    op.drop_table("booking_callbacks")
    op.drop_table("bookings")
    op.drop_table("booking_sessions")
    op.drop_table("booking_templates")
    op.drop_table("booking_stats_monthly")
    op.drop_table("booking_sanctions")
    op.drop_table("booking_resident_days")
    op.drop_table("booking_release_policies")
    op.drop_table("booking_sanction_rules")
    op.drop_table("booking_opening_balances")
    op.drop_table("booking_idempotency_keys")
