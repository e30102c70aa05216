"""Create the remote diagnosis room: the five networks and their turnaround targets, members and designated
reading centres, cases with their events and reports, consultations, and the month's volumes.

Revision ID: 20261207_0100
Revises: 20261206_0130
Create Date: 2026-12-07 01:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261207_0100"
down_revision: str | None = "20261206_0130"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The five networks, what their members submit, and the default turnaround targets in minutes per FHIR
# priority (routine, urgent, asap, stat): docs/decisions/telemed-workflow.md says where they come from.
NETWORKS = (
    ("teleconsultation", "远程会诊", ["consultation_request"], (4320, 1440, 240, 120)),
    ("ecg", "远程心电", ["ecg"], (1440, 60, 30, 15)),
    ("lab", "远程检验", ["lab_report", "lab_specimen"], (2880, 480, 240, 120)),
    ("imaging", "远程影像", ["imaging_study"], (2880, 240, 120, 60)),
    ("pathology", "远程病理", ["pathology_case"], (7200, 2880, 1440, 720)),
)
PRIORITIES = ("routine", "urgent", "asap", "stat")


def upgrade() -> None:
    op.create_table(
        "telemed_networks",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("case_types", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "code IN ('teleconsultation', 'ecg', 'lab', 'imaging', 'pathology')", name=op.f("ck_telemed_networks_code")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_telemed_networks")),
    )
    op.create_table(
        "telemed_turnaround_targets",
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "priority IN ('routine', 'urgent', 'asap', 'stat')", name=op.f("ck_telemed_turnaround_targets_priority")
        ),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_telemed_turnaround_targets_minutes_positive")),
        sa.ForeignKeyConstraint(
            ["network_code"],
            ["telemed_networks.code"],
            name=op.f("fk_telemed_turnaround_targets_network_code_telemed_networks"),
        ),
        sa.PrimaryKeyConstraint("network_code", "priority", name=op.f("pk_telemed_turnaround_targets")),
    )
    op.create_table(
        "telemed_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=12), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reads_case_types", sa.JSON(), nullable=True),
        sa.Column("reads_modalities", sa.JSON(), nullable=True),
        sa.Column("joined_on", sa.Date(), nullable=False),
        sa.Column("left_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "kind IN ('tertiary', 'secondary_or_above', 'community_health_centre', 'metro_city', 'aid', 'other')",
            name=op.f("ck_telemed_members_kind"),
        ),
        sa.CheckConstraint("role IN ('requester', 'reading_centre', 'both')", name=op.f("ck_telemed_members_role")),
        sa.CheckConstraint("left_on IS NULL OR left_on >= joined_on", name=op.f("ck_telemed_members_dates")),
        sa.ForeignKeyConstraint(["area_code"], ["areas.code"], name=op.f("fk_telemed_members_area_code_areas")),
        sa.ForeignKeyConstraint(["city_code"], ["areas.code"], name=op.f("fk_telemed_members_city_code_areas")),
        sa.ForeignKeyConstraint(
            ["network_code"], ["telemed_networks.code"], name=op.f("fk_telemed_members_network_code_telemed_networks")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_telemed_members_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_members")),
        sa.UniqueConstraint(
            "network_code",
            "organization_id",
            "joined_on",
            name=op.f("uq_telemed_members_network_code_organization_id_joined_on"),
        ),
    )
    op.create_index("ix_telemed_members_network_code_joined_on", "telemed_members", ["network_code", "joined_on"])
    op.create_index("ix_telemed_members_organization_id", "telemed_members", ["organization_id"])
    op.create_table(
        "telemed_month_volumes",
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("cases_submitted", sa.Integer(), nullable=False),
        sa.Column("reports_signed", sa.Integer(), nullable=False),
        sa.Column("consultations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_code"],
            ["telemed_networks.code"],
            name=op.f("fk_telemed_month_volumes_network_code_telemed_networks"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_month_volumes_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("network_code", "month", "organization_id", name=op.f("pk_telemed_month_volumes")),
    )
    op.create_table(
        "telemed_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("case_type", sa.String(length=24), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("requester_member_id", sa.Integer(), nullable=False),
        sa.Column("requester_organization_id", sa.Integer(), nullable=False),
        sa.Column("centre_member_id", sa.Integer(), nullable=True),
        sa.Column("centre_organization_id", sa.Integer(), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("clinical_question", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("business_status", sa.String(length=24), nullable=False),
        sa.Column("holder", sa.String(length=96), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "case_type IN ('ecg', 'imaging_study', 'lab_report', 'lab_specimen', 'pathology_case', 'consultation_request')",
            name=op.f("ck_telemed_cases_case_type"),
        ),
        sa.CheckConstraint("priority IN ('routine', 'urgent', 'asap', 'stat')", name=op.f("ck_telemed_cases_priority")),
        sa.CheckConstraint(
            "status IN ('requested', 'received', 'accepted', 'rejected', 'in-progress', 'completed', 'cancelled')",
            name=op.f("ck_telemed_cases_status"),
        ),
        sa.ForeignKeyConstraint(
            ["centre_member_id"], ["telemed_members.id"], name=op.f("fk_telemed_cases_centre_member_id_telemed_members")
        ),
        sa.ForeignKeyConstraint(
            ["centre_organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_cases_centre_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["network_code"], ["telemed_networks.code"], name=op.f("fk_telemed_cases_network_code_telemed_networks")
        ),
        sa.ForeignKeyConstraint(
            ["requester_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_cases_requester_member_id_telemed_members"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_cases_requester_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_telemed_cases_resident_id_residents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_cases")),
        sa.UniqueConstraint(
            "requester_organization_id",
            "network_code",
            "external_id",
            name=op.f("uq_telemed_cases_requester_organization_id_network_code_external_id"),
        ),
    )
    op.create_index("ix_telemed_cases_centre_member_status", "telemed_cases", ["centre_member_id", "status"])
    op.create_index("ix_telemed_cases_centre_status", "telemed_cases", ["centre_organization_id", "status", "due_at"])
    op.create_index("ix_telemed_cases_network_status_due", "telemed_cases", ["network_code", "status", "due_at"])
    op.create_index("ix_telemed_cases_requester", "telemed_cases", ["requester_organization_id", "id"])
    op.create_table(
        "telemed_designations",
        sa.Column("requester_member_id", sa.Integer(), nullable=False),
        sa.Column("centre_member_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["centre_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_designations_centre_member_id_telemed_members"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_designations_requester_member_id_telemed_members"),
        ),
        sa.PrimaryKeyConstraint("requester_member_id", "centre_member_id", name=op.f("pk_telemed_designations")),
    )
    op.create_table(
        "telemed_case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("centre_member_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submitted', 'routed', 'received', 'accepted', 'rejected', 'claimed', 'released', 'drafted', 'signed', 'cancelled', 'unroutable')",
            name=op.f("ck_telemed_case_events_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_case_events_case_id_telemed_cases")
        ),
        sa.ForeignKeyConstraint(
            ["centre_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_case_events_centre_member_id_telemed_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_case_events")),
        sa.UniqueConstraint("case_id", "request_key", name=op.f("uq_telemed_case_events_case_id_request_key")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_telemed_case_events_case_id_seq")),
    )
    op.create_table(
        "telemed_consultations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("requester_member_id", sa.Integer(), nullable=False),
        sa.Column("requester_organization_id", sa.Integer(), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=True),
        sa.Column("opinion_by", sa.String(length=96), nullable=True),
        sa.Column("opinion_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "status IN ('scheduled', 'completed', 'cancelled')", name=op.f("ck_telemed_consultations_status")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_telemed_consultations_times")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_consultations_case_id_telemed_cases")
        ),
        sa.ForeignKeyConstraint(
            ["network_code"],
            ["telemed_networks.code"],
            name=op.f("fk_telemed_consultations_network_code_telemed_networks"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_consultations_requester_member_id_telemed_members"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_organization_id"],
            ["organizations.id"],
            name=op.f("fk_telemed_consultations_requester_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_consultations")),
        sa.UniqueConstraint(
            "requester_organization_id",
            "request_key",
            name=op.f("uq_telemed_consultations_requester_organization_id_request_key"),
        ),
    )
    op.create_index(
        "ix_telemed_consultations_network_starts_at", "telemed_consultations", ["network_code", "starts_at"]
    )
    op.create_table(
        "telemed_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("centre_member_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=96), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by", sa.String(length=96), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["telemed_cases.id"], name=op.f("fk_telemed_reports_case_id_telemed_cases")
        ),
        sa.ForeignKeyConstraint(
            ["centre_member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_reports_centre_member_id_telemed_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_reports")),
        sa.UniqueConstraint("case_id", name=op.f("uq_telemed_reports_case_id")),
    )
    op.create_table(
        "telemed_consultation_participants",
        sa.Column("consultation_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("doctor_name", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["telemed_consultations.id"],
            name=op.f("fk_telemed_consultation_participants_consultation_id_telemed_consultations"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["telemed_members.id"],
            name=op.f("fk_telemed_consultation_participants_member_id_telemed_members"),
        ),
        sa.PrimaryKeyConstraint("consultation_id", "member_id", name=op.f("pk_telemed_consultation_participants")),
    )

    networks = sa.table(
        "telemed_networks", sa.column("code", sa.String), sa.column("name", sa.String), sa.column("case_types", sa.JSON)
    )
    op.bulk_insert(networks, [{"code": code, "name": name, "case_types": types} for code, name, types, _ in NETWORKS])
    targets = sa.table(
        "telemed_turnaround_targets",
        sa.column("network_code", sa.String),
        sa.column("priority", sa.String),
        sa.column("minutes", sa.Integer),
    )
    op.bulk_insert(
        targets,
        [
            {"network_code": code, "priority": priority, "minutes": minutes}
            for code, _, _, all_minutes in NETWORKS
            for priority, minutes in zip(PRIORITIES, all_minutes, strict=True)
        ],
    )


def downgrade() -> None:
    op.drop_table("telemed_consultation_participants")
    op.drop_table("telemed_reports")
    op.drop_table("telemed_consultations")
    op.drop_table("telemed_case_events")
    op.drop_table("telemed_designations")
    op.drop_table("telemed_cases")
    op.drop_table("telemed_month_volumes")
    op.drop_table("telemed_members")
    op.drop_table("telemed_turnaround_targets")
    op.drop_table("telemed_networks")
