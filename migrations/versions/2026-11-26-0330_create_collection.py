"""Create data collection: stored records and versions, upload jobs, raw payloads, quality aggregates.

Revision ID: 20261126_0330
Revises: 20261126_0230
Create Date: 2026-11-26 03:30:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0330"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = ("collection",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "collection_code_entries",
        sa.Column("table_id", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("table_id", "code", name=op.f("pk_collection_code_entries")),
    )
    op.create_table(
        "collection_code_tables",
        sa.Column("table_id", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_id", name=op.f("pk_collection_code_tables")),
    )
    op.create_table(
        "collection_conformance",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.BigInteger(), nullable=False),
        sa.Column("conforming", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "month", "group", name=op.f("pk_collection_conformance")),
    )
    op.create_table(
        "collection_daily_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("amended", sa.BigInteger(), nullable=False),
        sa.Column("revoked", sa.BigInteger(), nullable=False),
        sa.Column("duplicate", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("flagged", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "day", "form", name=op.f("pk_collection_daily_counts")),
    )
    op.create_table(
        "collection_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("\"group\" IN ('outpatient', 'inpatient')", name=op.f("ck_collection_enrolments_group")),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name=op.f("ck_collection_enrolments_dates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_enrolments")),
    )
    with op.batch_alter_table("collection_enrolments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_enrolments_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "collection_followup_flags",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("submitted", sa.String(length=2), nullable=False),
        sa.Column("computed", sa.String(length=2), nullable=False),
        sa.Column("event_month", sa.Integer(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "form", "record_id", name=op.f("pk_collection_followup_flags")),
    )
    op.create_table(
        "collection_form_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_collection_form_assignments_dates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_form_assignments")),
    )
    with op.batch_alter_table("collection_form_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collection_form_assignments_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "collection_job_rejections",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "job_id", "position", name=op.f("pk_collection_job_rejections")),
    )
    op.create_table(
        "collection_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=96), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=True),
        sa.Column("encoding", sa.String(length=16), nullable=False),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("spool_path", sa.String(length=255), nullable=True),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("next_position", sa.BigInteger(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("rejections_by_rule", sa.JSON(), nullable=False),
        sa.Column("rejections_by_field", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'failed')", name=op.f("ck_collection_jobs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_jobs")),
        sa.UniqueConstraint(
            "organization_id", "dedupe_key", name=op.f("uq_collection_jobs_organization_id_dedupe_key")
        ),
    )
    with op.batch_alter_table("collection_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collection_jobs_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "collection_managed_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "area_code", "program", "month", name=op.f("pk_collection_managed_counts")
        ),
    )
    op.create_table(
        "collection_managed_records",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("health_record_no", sa.String(length=17), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "program", "health_record_no", name=op.f("pk_collection_managed_records")
        ),
    )
    op.create_table(
        "collection_monthly_totals",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("stored", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "month", name=op.f("pk_collection_monthly_totals")),
    )
    op.create_table(
        "collection_opening_balances",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=48), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('accepted_total', 'health_record_basic', 'health_record_hypertension', 'health_record_diabetes')",
            name=op.f("ck_collection_opening_balances_kind"),
        ),
        sa.PrimaryKeyConstraint("kind", "scope", name=op.f("pk_collection_opening_balances")),
    )
    op.create_table(
        "collection_raw_payloads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_type", sa.String(length=96), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("spool_path", sa.String(length=255), nullable=True),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_raw_payloads")),
    )
    with op.batch_alter_table("collection_raw_payloads", schema=None) as batch_op:
        batch_op.create_index("ix_collection_raw_payloads_received_at", ["received_at"], unique=False)

    op.create_table(
        "collection_record_versions",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("payload_hash", sa.String(length=32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "form", "record_id", "version", name=op.f("pk_collection_record_versions")
        ),
    )
    op.create_table(
        "collection_records",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("payload_hash", sa.String(length=32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_month", sa.Integer(), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conformance", sa.SmallInteger(), nullable=False),
        sa.Column("conformance_month", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "form", "record_id", name=op.f("pk_collection_records")),
    )
    op.create_table(
        "collection_rejection_counts",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column("field", sa.String(length=96), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organization_id", "day", "form", "rule", "field", name=op.f("pk_collection_rejection_counts")
        ),
    )
    op.create_table(
        "collection_workload",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visits", sa.BigInteger(), nullable=False),
        sa.Column("discharges", sa.BigInteger(), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "day", name=op.f("pk_collection_workload")),
    )


def downgrade() -> None:

    op.drop_table("collection_workload")
    op.drop_table("collection_rejection_counts")
    op.drop_table("collection_records")
    op.drop_table("collection_record_versions")
    with op.batch_alter_table("collection_raw_payloads", schema=None) as batch_op:
        batch_op.drop_index("ix_collection_raw_payloads_received_at")

    op.drop_table("collection_raw_payloads")
    op.drop_table("collection_opening_balances")
    op.drop_table("collection_monthly_totals")
    op.drop_table("collection_managed_records")
    op.drop_table("collection_managed_counts")
    with op.batch_alter_table("collection_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_jobs_organization_id"))

    op.drop_table("collection_jobs")
    op.drop_table("collection_job_rejections")
    with op.batch_alter_table("collection_form_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_form_assignments_organization_id"))

    op.drop_table("collection_form_assignments")
    op.drop_table("collection_followup_flags")
    with op.batch_alter_table("collection_enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collection_enrolments_organization_id"))

    op.drop_table("collection_enrolments")
    op.drop_table("collection_daily_counts")
    op.drop_table("collection_conformance")
    op.drop_table("collection_code_tables")
    op.drop_table("collection_code_entries")
