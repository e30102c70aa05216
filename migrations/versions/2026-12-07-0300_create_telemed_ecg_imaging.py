"""Create the remote diagnosis networks' ECG tracings and imaging studies with their reports.

Revision ID: 20261207_0300
Revises: 20261207_0100
Create Date: 2026-12-07 03:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0300"
down_revision: str | None = "20261207_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _patient_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("patient_id_hash", sa.String(length=64), nullable=True),
        sa.Column("patient_id_enc", sa.Text(), nullable=True),
        sa.Column("patient_name_enc", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "telemed_ecg_tracings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("source_format", sa.String(length=8), nullable=False),
        sa.Column("source_uid", sa.String(length=128), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("leads", sa.String(length=255), nullable=False),
        sa.Column("sampling_rate_hz", sa.Float(), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("samples", sa.LargeBinary(), nullable=False),
        *_patient_columns(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source_format IN ('dicom', 'aecg')", name=op.f("ck_telemed_ecg_tracings_source_format")),
        sa.CheckConstraint("sampling_rate_hz > 0", name=op.f("ck_telemed_ecg_tracings_sampling_rate_hz")),
        sa.CheckConstraint("sample_count > 0", name=op.f("ck_telemed_ecg_tracings_sample_count")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_ecg_tracings_case_id_telemed_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_ecg_tracings")),
        sa.UniqueConstraint("file_sha256", name=op.f("uq_telemed_ecg_tracings_file_sha256")),
    )
    op.create_index("ix_telemed_ecg_tracings_patient_id_hash", "telemed_ecg_tracings", ["patient_id_hash"])
    op.create_index("ix_telemed_ecg_tracings_case_id", "telemed_ecg_tracings", ["case_id"])
    op.create_table(
        "telemed_imaging_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("pacs", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("accession_number", sa.String(length=16), nullable=True),
        sa.Column("modalities", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=64), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("series_count", sa.Integer(), nullable=False),
        sa.Column("image_count", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        *_patient_columns(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_imaging_studies_case_id_telemed_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_imaging_studies")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_telemed_imaging_studies_study_instance_uid")),
    )
    op.create_index("ix_telemed_imaging_studies_patient_id_hash", "telemed_imaging_studies", ["patient_id_hash"])
    op.create_index("ix_telemed_imaging_studies_case_id", "telemed_imaging_studies", ["case_id"])
    op.create_table(
        "telemed_imaging_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("impression", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('preliminary', 'final')", name=op.f("ck_telemed_imaging_reports_status")),
        sa.CheckConstraint(
            "status = 'preliminary' OR signed_at IS NOT NULL", name=op.f("ck_telemed_imaging_reports_signed")
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["telemed_imaging_studies.id"],
            name=op.f("fk_telemed_imaging_reports_study_id_telemed_imaging_studies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_imaging_reports")),
        sa.UniqueConstraint("study_id", name=op.f("uq_telemed_imaging_reports_study_id")),
    )


def downgrade() -> None:
    op.drop_table("telemed_imaging_reports")
    op.drop_index("ix_telemed_imaging_studies_case_id", table_name="telemed_imaging_studies")
    op.drop_index("ix_telemed_imaging_studies_patient_id_hash", table_name="telemed_imaging_studies")
    op.drop_table("telemed_imaging_studies")
    op.drop_index("ix_telemed_ecg_tracings_case_id", table_name="telemed_ecg_tracings")
    op.drop_index("ix_telemed_ecg_tracings_patient_id_hash", table_name="telemed_ecg_tracings")
    op.drop_table("telemed_ecg_tracings")
