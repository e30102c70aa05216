"""Create the records room's family doctor and chronic disease tables: teams, service packages, contracts, area
populations; registers, follow-ups, overdue-list calls and the patient-month table of the monthly indicators.

Revision ID: 20261209_0500
Revises: 20261209_0400
Create Date: 2026-12-09 05:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261209_0500"
down_revision: str | None = "20261209_0400"  # re-chained after the e-map branch (merger: re-chain)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "family_service_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("services", sa.String(length=1000), nullable=False),
        sa.Column("annual_fee_fen", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("annual_fee_fen >= 0", name=op.f("ck_family_service_packages_annual_fee_fen")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_service_packages")),
        sa.UniqueConstraint("code", name=op.f("uq_family_service_packages_code")),
    )
    op.create_table(
        "family_area_populations",
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("population > 0", name=op.f("ck_family_area_populations_population")),
        sa.ForeignKeyConstraint(["area_code"], ["areas.code"], name=op.f("fk_family_area_populations_area_code_areas")),
        sa.PrimaryKeyConstraint("area_code", "year", name=op.f("pk_family_area_populations")),
    )
    op.create_table(
        "chronic_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=96), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("next_due_on", sa.Date(), nullable=False),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.String(length=24), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("program IN ('hypertension', 'diabetes')", name=op.f("ck_chronic_registrations_program")),
        sa.CheckConstraint(
            "removal_reason IS NULL OR removal_reason IN ('visited_elsewhere', 'moved_away', 'died', 'refused', 'wrong_number', 'other')",
            name=op.f("ck_chronic_registrations_removal_reason"),
        ),
        sa.CheckConstraint(
            "source IN ('diagnosis', 'followup_upload', 'clinic')", name=op.f("ck_chronic_registrations_source")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_chronic_registrations_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_chronic_registrations_resident_id_residents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chronic_registrations")),
    )
    with op.batch_alter_table("chronic_registrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chronic_registrations_organization_due", ["organization_id", "next_due_on"], unique=False
        )
        batch_op.create_index("ux_chronic_registrations_resident_program", ["resident_id", "program"], unique=True)

    op.create_table(
        "family_teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_family_teams_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_teams")),
        sa.UniqueConstraint("organization_id", "code", name=op.f("uq_family_teams_organization_id_code")),
    )
    with op.batch_alter_table("family_teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_family_teams_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "chronic_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("removal_reason", sa.String(length=24), nullable=True),
        sa.Column("called_by", sa.String(length=96), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(outcome = 'removed') = (removal_reason IS NOT NULL)", name=op.f("ck_chronic_calls_removed_with_reason")
        ),
        sa.CheckConstraint(
            "outcome IN ('agreed_to_visit', 'remind_later', 'no_answer', 'removed')",
            name=op.f("ck_chronic_calls_outcome"),
        ),
        sa.CheckConstraint(
            "removal_reason IS NULL OR removal_reason IN ('visited_elsewhere', 'moved_away', 'died', 'refused', 'wrong_number', 'other')",
            name=op.f("ck_chronic_calls_removal_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["chronic_registrations.id"],
            name=op.f("fk_chronic_calls_registration_id_chronic_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chronic_calls")),
    )
    with op.batch_alter_table("chronic_calls", schema=None) as batch_op:
        batch_op.create_index("ix_chronic_calls_registration_due", ["registration_id", "due_on"], unique=False)

    op.create_table(
        "chronic_followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("source_key", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("sbp", sa.SmallInteger(), nullable=False),
        sa.Column("dbp", sa.SmallInteger(), nullable=False),
        sa.Column("fbg_mmol_l", sa.Numeric(precision=4, scale=1, asdecimal=False), nullable=True),
        sa.Column("adverse_reaction", sa.Boolean(), nullable=False),
        sa.Column("new_complication", sa.Boolean(), nullable=False),
        sa.Column("classification", sa.String(length=1), nullable=False),
        sa.Column("next_step", sa.String(length=8), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("classification IN ('1', '2', '3', '4')", name=op.f("ck_chronic_followups_classification")),
        sa.CheckConstraint("next_step IN ('routine', 'recheck', 'refer')", name=op.f("ck_chronic_followups_next_step")),
        sa.CheckConstraint("sbp > dbp", name=op.f("ck_chronic_followups_pressures")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_chronic_followups_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["chronic_registrations.id"],
            name=op.f("fk_chronic_followups_registration_id_chronic_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chronic_followups")),
        sa.UniqueConstraint("source_key", name=op.f("uq_chronic_followups_source_key")),
    )
    with op.batch_alter_table("chronic_followups", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chronic_followups_registration_visit", ["registration_id", "visit_date"], unique=False
        )

    op.create_table(
        "chronic_patient_months",
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("followups_12m", sa.SmallInteger(), nullable=False),
        sa.Column("is_standard", sa.Boolean(), nullable=False),
        sa.Column("is_controlled", sa.Boolean(), nullable=False),
        sa.Column("hearts_eligible", sa.Boolean(), nullable=False),
        sa.Column("hearts_controlled", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["chronic_registrations.id"],
            name=op.f("fk_chronic_patient_months_registration_id_chronic_registrations"),
        ),
        sa.PrimaryKeyConstraint("month", "registration_id", name=op.f("pk_chronic_patient_months")),
    )
    with op.batch_alter_table("chronic_patient_months", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chronic_patient_months_month_program_area", ["month", "program", "area_code"], unique=False
        )

    op.create_table(
        "family_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.Column("household_key", sa.String(length=32), nullable=True),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("signed_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'renewed', 'switched', 'cancelled', 'expired')",
            name=op.f("ck_family_contracts_status"),
        ),
        sa.CheckConstraint("ended_on IS NULL OR ended_on >= starts_on", name=op.f("ck_family_contracts_ended_on")),
        sa.CheckConstraint("ends_on > starts_on", name=op.f("ck_family_contracts_period")),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["family_service_packages.id"],
            name=op.f("fk_family_contracts_package_id_family_service_packages"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_id"], ["family_contracts.id"], name=op.f("fk_family_contracts_previous_id_family_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["residents.id"], name=op.f("fk_family_contracts_resident_id_residents")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["family_teams.id"], name=op.f("fk_family_contracts_team_id_family_teams")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_contracts")),
    )
    with op.batch_alter_table("family_contracts", schema=None) as batch_op:
        batch_op.create_index("ix_family_contracts_area_period", ["area_code", "starts_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_family_contracts_household_key"), ["household_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_family_contracts_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index("ix_family_contracts_team_status", ["team_id", "status"], unique=False)
        batch_op.create_index(
            "ux_family_contracts_active_resident",
            ["resident_id"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "family_team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("practitioner_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint("role IN ('doctor', 'nurse', 'public_health')", name=op.f("ck_family_team_members_role")),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioners.id"], name=op.f("fk_family_team_members_practitioner_id_practitioners")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["family_teams.id"], name=op.f("fk_family_team_members_team_id_family_teams")
        ),
        sa.PrimaryKeyConstraint("team_id", "practitioner_id", name=op.f("pk_family_team_members")),
    )
    with op.batch_alter_table("family_team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_family_team_members_practitioner_id"), ["practitioner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("family_team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_team_members_practitioner_id"))

    op.drop_table("family_team_members")
    with op.batch_alter_table("family_contracts", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_family_contracts_active_resident",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index("ix_family_contracts_team_status")
        batch_op.drop_index(batch_op.f("ix_family_contracts_resident_id"))
        batch_op.drop_index(batch_op.f("ix_family_contracts_household_key"))
        batch_op.drop_index("ix_family_contracts_area_period")

    op.drop_table("family_contracts")
    with op.batch_alter_table("chronic_patient_months", schema=None) as batch_op:
        batch_op.drop_index("ix_chronic_patient_months_month_program_area")

    op.drop_table("chronic_patient_months")
    with op.batch_alter_table("chronic_followups", schema=None) as batch_op:
        batch_op.drop_index("ix_chronic_followups_registration_visit")

    op.drop_table("chronic_followups")
    with op.batch_alter_table("chronic_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_chronic_calls_registration_due")

    op.drop_table("chronic_calls")
    with op.batch_alter_table("family_teams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_family_teams_organization_id"))

    op.drop_table("family_teams")
    with op.batch_alter_table("chronic_registrations", schema=None) as batch_op:
        batch_op.drop_index("ux_chronic_registrations_resident_program")
        batch_op.drop_index("ix_chronic_registrations_organization_due")

    op.drop_table("chronic_registrations")
    op.drop_table("family_area_populations")
    op.drop_table("family_service_packages")
