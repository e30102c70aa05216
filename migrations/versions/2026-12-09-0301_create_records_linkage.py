"""Create the records room: patient links and their history, the review queue, the timeline index, consents and
the access log (the collection branch's 20261209_0302 adds the index of stored records the linker follows).

Revision ID: 20261209_0301
Revises: 20261209_0100
Create Date: 2026-12-09 03:01:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261209_0301"
down_revision: str | None = "20261209_0100"  # re-chained after the bulletin branch (merger: re-chain)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "records_patient_links",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("source_form", sa.String(length=32), nullable=False),
        sa.Column("source_record_id", sa.String(length=64), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.CheckConstraint("status IN ('linked', 'review', 'unlinked')", name=op.f("ck_records_patient_links_status")),
        sa.CheckConstraint("method IS NULL OR method IN ('id_number', 'score', 'operator')",
                           name=op.f("ck_records_patient_links_method")),
        sa.CheckConstraint("(status = 'linked') = (resident_id IS NOT NULL)",
                           name=op.f("ck_records_patient_links_linked_resident")),
        sa.PrimaryKeyConstraint("organization_id", "patient_key", name=op.f("pk_records_patient_links")),
    )
    op.create_index("ix_records_patient_links_resident_id", "records_patient_links", ["resident_id"])
    op.create_index("ix_records_patient_links_status", "records_patient_links", ["status"])

    op.create_table(
        "records_link_reviews",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(length=80), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("agreements", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("decided_at", _AT, nullable=True),
        sa.Column("decided_by", sa.String(length=96), nullable=True),
        sa.CheckConstraint("status IN ('open', 'accepted', 'rejected', 'superseded')",
                           name=op.f("ck_records_link_reviews_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_link_reviews")),
    )
    op.create_index("ix_records_link_reviews_status_id", "records_link_reviews", ["status", "id"])
    op.create_index("uq_records_link_reviews_candidate", "records_link_reviews",
                    ["organization_id", "patient_key", "resident_id", "source_version"], unique=True)

    op.create_table(
        "records_link_events",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_resident_id", sa.Integer(), nullable=True),
        sa.Column("to_resident_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("occurred_at", _AT, nullable=False),
        sa.CheckConstraint("kind IN ('linked', 'queued', 'unlinked', 'merged', 'unmerged', 'rejected')",
                           name=op.f("ck_records_link_events_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_link_events")),
    )
    op.create_index("ix_records_link_events_identity", "records_link_events", ["organization_id", "patient_key", "id"])

    op.create_table(
        "records_timeline",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("encounter_kind", sa.String(length=16), nullable=True),
        sa.Column("encounter_no", sa.String(length=64), nullable=True),
        sa.Column("owns_encounter", sa.Boolean(), nullable=False),
        sa.Column("patient_key", sa.String(length=80), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("event_time", _AT, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "form", "record_id", name=op.f("pk_records_timeline")),
    )
    op.create_index("ix_records_timeline_resident_event", "records_timeline", ["resident_id", "event_time"])
    op.create_index("ix_records_timeline_identity", "records_timeline", ["organization_id", "patient_key"])
    op.create_index("ix_records_timeline_encounter", "records_timeline",
                    ["organization_id", "encounter_kind", "encounter_no"])

    op.create_table(
        "records_link_cursor",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("received_at", _AT, nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_records_link_cursor")),
    )

    op.create_table(
        "records_consents",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", _AT, nullable=False),
        sa.Column("expires_at", _AT, nullable=False),
        sa.Column("revoked_at", _AT, nullable=True),
        sa.Column("granted_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint("expires_at > granted_at", name=op.f("ck_records_consents_period")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_consents")),
    )
    op.create_index("ix_records_consents_resident_organization", "records_consents", ["resident_id", "organization_id"])

    op.create_table(
        "records_access_log",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("accessor", sa.String(length=96), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("reason_kind", sa.String(length=16), nullable=False),
        sa.Column("reason_ref", sa.String(length=255), nullable=False),
        sa.Column("opened_at", _AT, nullable=False),
        sa.Column("reviewed_at", _AT, nullable=True),
        sa.Column("reviewed_by", sa.String(length=96), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint("reason_kind IN ('booking', 'open_encounter', 'consent', 'family_doctor', 'break_glass')",
                           name=op.f("ck_records_access_log_reason_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records_access_log")),
    )
    op.create_index("ix_records_access_log_resident_id", "records_access_log", ["resident_id", "id"])
    op.create_index("ix_records_access_log_review", "records_access_log", ["reason_kind", "reviewed_at"])


def downgrade() -> None:
    for table in ("records_access_log", "records_consents", "records_link_cursor", "records_timeline",
                  "records_link_events", "records_link_reviews", "records_patient_links"):
        op.drop_table(table)
