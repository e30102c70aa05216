"""Create the pathology network's experts and doctors, the pathology detail of a case, case-discussion
meetings (participants, cases discussed) and video lectures; index cases by network and submission time.

Revision ID: 20261208_0600
Revises: 20261207_0500
Create Date: 2026-12-08 06:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_0600"
down_revision: str | None = "20261207_0500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemed_pathology_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organizer_member_id", sa.Integer(), nullable=False),
        sa.Column("organizer_organization_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=12), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=True),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'held', 'cancelled')", name=op.f("ck_telemed_pathology_meetings_status")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_telemed_pathology_meetings_times")),
        sa.ForeignKeyConstraint(
            ["city_code"], ["areas.code"], name=op.f("fk_telemed_pathology_meetings_city_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["organizer_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_pathology_meetings_organizer_member_id_telemed_members"),
        ),
        sa.ForeignKeyConstraint(
            ["organizer_organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_pathology_meetings_organizer_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_pathology_meetings")),
        sa.UniqueConstraint(
            "organizer_organization_id",
            "request_key",
            name=op.f("uq_telemed_pathology_meetings_organizer_organization_id_request_key"),
        ),
    )
    op.create_index(
        "ix_telemed_pathology_meetings_city_status_held_at",
        "telemed_pathology_meetings",
        ["city_code", "status", "held_at"],
    )

    op.create_table(
        "telemed_pathology_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=32), nullable=True),
        sa.Column("specialty", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(length=96), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deactivated_by", sa.String(length=96), nullable=True),
        sa.Column("deactivation_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('expert', 'doctor')", name=op.f("ck_telemed_pathology_people_kind")),
        sa.CheckConstraint(
            "deactivated_at IS NULL OR deactivated_at >= registered_at", name=op.f("ck_telemed_pathology_people_dates")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["telemed_members.id"], name=op.f("fk_telemed_pathology_people_member_id_telemed_members")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_pathology_people_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_pathology_people")),
        sa.UniqueConstraint("organization_id", "key", name=op.f("uq_telemed_pathology_people_organization_id_key")),
    )
    op.create_index(
        "ix_telemed_pathology_people_kind_registered_at", "telemed_pathology_people", ["kind", "registered_at"]
    )

    op.create_table(
        "telemed_pathology_cases",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("requesting_doctor_id", sa.Integer(), nullable=True),
        sa.Column("specimen_site", sa.String(length=128), nullable=False),
        sa.Column("specimen_kind", sa.String(length=24), nullable=False),
        sa.Column("slide_count", sa.Integer(), nullable=False),
        sa.Column("block_count", sa.Integer(), nullable=True),
        sa.Column("slide_refs", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "specimen_kind IN ('biopsy', 'resection', 'cytology', 'frozen_section', 'consultation_slides', 'other')",
            name=op.f("ck_telemed_pathology_cases_specimen_kind"),
        ),
        sa.CheckConstraint(
            "block_count IS NULL OR block_count >= 0", name=op.f("ck_telemed_pathology_cases_block_count")
        ),
        sa.CheckConstraint("slide_count > 0", name=op.f("ck_telemed_pathology_cases_slide_count")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_pathology_cases_case_id_telemed_cases")
        ),
        sa.ForeignKeyConstraint(
            ["requesting_doctor_id"],
            ["telemed_pathology_people.id"],
            name=op.f("fk_telemed_pathology_cases_requesting_doctor_id_telemed_pathology_people"),
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_telemed_pathology_cases")),
    )
    op.create_table(
        "telemed_pathology_lectures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organizer_member_id", sa.Integer(), nullable=False),
        sa.Column("organizer_organization_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=12), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=True),
        sa.Column("attendance", sa.Integer(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'held', 'cancelled')", name=op.f("ck_telemed_pathology_lectures_status")
        ),
        sa.CheckConstraint(
            "attendance IS NULL OR attendance >= 0", name=op.f("ck_telemed_pathology_lectures_attendance")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_telemed_pathology_lectures_times")),
        sa.ForeignKeyConstraint(
            ["city_code"], ["areas.code"], name=op.f("fk_telemed_pathology_lectures_city_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["organizer_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_pathology_lectures_organizer_member_id_telemed_members"),
        ),
        sa.ForeignKeyConstraint(
            ["organizer_organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_pathology_lectures_organizer_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["speaker_id"],
            ["telemed_pathology_people.id"],
            name=op.f("fk_telemed_pathology_lectures_speaker_id_telemed_pathology_people"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_pathology_lectures")),
        sa.UniqueConstraint(
            "organizer_organization_id",
            "request_key",
            name=op.f("uq_telemed_pathology_lectures_organizer_organization_id_request_key"),
        ),
    )
    op.create_index(
        "ix_telemed_pathology_lectures_city_status_held_at",
        "telemed_pathology_lectures",
        ["city_code", "status", "held_at"],
    )

    op.create_table(
        "telemed_pathology_meeting_cases",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_pathology_meeting_cases_case_id_telemed_cases")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["telemed_pathology_meetings.id"],
            name=op.f("fk_telemed_pathology_meeting_cases_meeting_id_telemed_pathology_meetings"),
        ),
        sa.PrimaryKeyConstraint("meeting_id", "case_id", name=op.f("pk_telemed_pathology_meeting_cases")),
    )
    op.create_table(
        "telemed_pathology_meeting_participants",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["telemed_pathology_meetings.id"],
            name=op.f("fk_telemed_pathology_meeting_participants_meeting_id_telemed_pathology_meetings"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["telemed_pathology_people.id"],
            name=op.f("fk_telemed_pathology_meeting_participants_person_id_telemed_pathology_people"),
        ),
        sa.PrimaryKeyConstraint("meeting_id", "person_id", name=op.f("pk_telemed_pathology_meeting_participants")),
    )
    op.create_index(
        "ix_telemed_pathology_meeting_participants_person_id", "telemed_pathology_meeting_participants", ["person_id"]
    )

    op.create_index("ix_telemed_cases_network_submitted_at", "telemed_cases", ["network_code", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_telemed_cases_network_submitted_at", table_name="telemed_cases")

    op.drop_index(
        "ix_telemed_pathology_meeting_participants_person_id", table_name="telemed_pathology_meeting_participants"
    )

    op.drop_table("telemed_pathology_meeting_participants")
    op.drop_table("telemed_pathology_meeting_cases")
    op.drop_index("ix_telemed_pathology_lectures_city_status_held_at", table_name="telemed_pathology_lectures")

    op.drop_table("telemed_pathology_lectures")
    op.drop_table("telemed_pathology_cases")
    op.drop_index("ix_telemed_pathology_people_kind_registered_at", table_name="telemed_pathology_people")

    op.drop_table("telemed_pathology_people")
    op.drop_index("ix_telemed_pathology_meetings_city_status_held_at", table_name="telemed_pathology_meetings")

    op.drop_table("telemed_pathology_meetings")
