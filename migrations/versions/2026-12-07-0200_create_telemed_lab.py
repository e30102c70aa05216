"""Create the lab tables fed over HL7 v2: messages as received (raw, encrypted), lab reports and their
observations, specimens and the steps of their routing.

Revision ID: 20261207_0200
Revises: 20261207_0300
Create Date: 2026-12-07 02:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0200"
down_revision: str | None = "20261207_0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemed_lab_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sending_application", sa.String(length=180), nullable=False),
        sa.Column("sending_facility", sa.String(length=180), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("message_type", sa.String(length=16), nullable=True),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error_code", sa.SmallInteger(), nullable=True),
        sa.Column("error_location", sa.String(length=32), nullable=True),
        sa.Column("error_text", sa.String(length=400), nullable=True),
        sa.Column("raw_cipher", sa.Text(), nullable=False),
        sa.Column("raw_bytes", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ack_code IN ('AA', 'AE', 'AR')", name=op.f("ck_telemed_lab_messages_ack_code")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_lab_messages")),
    )
    op.create_index("ix_telemed_lab_messages_received_at", "telemed_lab_messages", ["received_at"], unique=False)
    op.create_index(
        "ux_telemed_lab_messages_accepted",
        "telemed_lab_messages",
        ["sending_application", "sending_facility", "control_id"],
        unique=True,
        sqlite_where=sa.text("ack_code = 'AA'"),
        postgresql_where=sa.text("ack_code = 'AA'"),
    )

    op.create_table(
        "telemed_lab_specimens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sending_facility", sa.String(length=180), nullable=False),
        sa.Column("specimen_no", sa.String(length=64), nullable=False),
        sa.Column("specimen_type", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reject_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(state = 'rejected') = (reject_reason IS NOT NULL)", name=op.f("ck_telemed_lab_specimens_reject_reason")
        ),
        sa.CheckConstraint(
            "state IN ('collected', 'shipped', 'received', 'reported', 'rejected')",
            name=op.f("ck_telemed_lab_specimens_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_lab_specimens")),
    )
    op.create_index(
        "ux_telemed_lab_specimens_number", "telemed_lab_specimens", ["sending_facility", "specimen_no"], unique=True
    )

    op.create_table(
        "telemed_lab_specimen_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("specimen_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "to_state IN ('collected', 'shipped', 'received', 'reported', 'rejected')",
            name=op.f("ck_telemed_lab_specimen_steps_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["telemed_lab_messages.id"],
            name=op.f("fk_telemed_lab_specimen_steps_message_id_telemed_lab_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["specimen_id"],
            ["telemed_lab_specimens.id"],
            name=op.f("fk_telemed_lab_specimen_steps_specimen_id_telemed_lab_specimens"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_lab_specimen_steps")),
    )
    op.create_index(
        "ix_telemed_lab_specimen_steps_specimen_id", "telemed_lab_specimen_steps", ["specimen_id"], unique=False
    )

    op.create_table(
        "telemed_lab_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("sending_facility", sa.String(length=180), nullable=False),
        sa.Column("placer_order_no", sa.String(length=64), nullable=True),
        sa.Column("filler_order_no", sa.String(length=64), nullable=True),
        sa.Column("specimen_no", sa.String(length=64), nullable=True),
        sa.Column("test_code", sa.String(length=64), nullable=False),
        sa.Column("test_name", sa.String(length=200), nullable=True),
        sa.Column("result_status", sa.String(length=4), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("patient_hash", sa.String(length=64), nullable=True),
        sa.Column("unmatched_reason", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "unmatched_reason IS NULL OR unmatched_reason IN ('no_identifier', 'invalid_identifier', 'not_in_index')",
            name=op.f("ck_telemed_lab_reports_unmatched_reason"),
        ),
        sa.CheckConstraint(
            "(resident_id IS NULL) = (unmatched_reason IS NOT NULL)", name=op.f("ck_telemed_lab_reports_matched")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["telemed_lab_messages.id"],
            name=op.f("fk_telemed_lab_reports_message_id_telemed_lab_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_telemed_lab_reports_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_lab_reports")),
    )
    op.create_index("ix_telemed_lab_reports_message_id", "telemed_lab_reports", ["message_id"], unique=False)
    op.create_index("ix_telemed_lab_reports_patient_hash", "telemed_lab_reports", ["patient_hash"], unique=False)
    op.create_index("ix_telemed_lab_reports_resident_id", "telemed_lab_reports", ["resident_id"], unique=False)

    op.create_table(
        "telemed_lab_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("value_type", sa.String(length=4), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("units", sa.String(length=64), nullable=True),
        sa.Column("reference_range", sa.String(length=120), nullable=True),
        sa.Column("abnormal_flag", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=4), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["telemed_lab_reports.id"],
            name=op.f("fk_telemed_lab_observations_report_id_telemed_lab_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_lab_observations")),
    )
    op.create_index("ix_telemed_lab_observations_report_id", "telemed_lab_observations", ["report_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_telemed_lab_observations_report_id", table_name="telemed_lab_observations")

    op.drop_table("telemed_lab_observations")
    op.drop_index("ix_telemed_lab_reports_resident_id", table_name="telemed_lab_reports")
    op.drop_index("ix_telemed_lab_reports_patient_hash", table_name="telemed_lab_reports")
    op.drop_index("ix_telemed_lab_reports_message_id", table_name="telemed_lab_reports")

    op.drop_table("telemed_lab_reports")
    op.drop_index("ix_telemed_lab_specimen_steps_specimen_id", table_name="telemed_lab_specimen_steps")

    op.drop_table("telemed_lab_specimen_steps")
    op.drop_index("ux_telemed_lab_specimens_number", table_name="telemed_lab_specimens")

    op.drop_table("telemed_lab_specimens")
    op.drop_index(
        "ux_telemed_lab_messages_accepted",
        table_name="telemed_lab_messages",
        sqlite_where=sa.text("ack_code = 'AA'"),
        postgresql_where=sa.text("ack_code = 'AA'"),
    )
    op.drop_index("ix_telemed_lab_messages_received_at", table_name="telemed_lab_messages")

    op.drop_table("telemed_lab_messages")
