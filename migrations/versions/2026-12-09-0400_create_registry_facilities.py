"""Create the medical e-map's facility profiles: position (WGS-84), phone, services and opening hours.

Revision ID: 20261209_0400
Revises: 20261209_0301
Create Date: 2026-12-09 04:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261209_0400"
down_revision: str | None = "20261209_0301"  # re-chained after the records tables (merger: re-chain)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICES = ("outpatient", "emergency", "fever_clinic", "inpatient", "pharmacy", "laboratory", "imaging",
            "vaccination", "maternity", "paediatrics", "dental", "tcm", "rehabilitation", "physical_exam",
            "family_doctor", "chronic_disease", "mental_health")


def upgrade() -> None:
    op.create_table(
        "facility_profiles",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("latitude BETWEEN -90 AND 90", name=op.f("ck_facility_profiles_latitude")),
        sa.CheckConstraint("longitude BETWEEN -180 AND 180", name=op.f("ck_facility_profiles_longitude")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_facility_profiles_organization_id_organizations")),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_facility_profiles")),
    )
    op.create_index("ix_facility_profiles_latitude_longitude", "facility_profiles", ["latitude", "longitude"])
    op.create_table(
        "facility_services",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.CheckConstraint(f"service IN {SERVICES!r}", name=op.f("ck_facility_services_service")),
        sa.ForeignKeyConstraint(["organization_id"], ["facility_profiles.organization_id"],
                                name=op.f("fk_facility_services_organization_id_facility_profiles")),
        sa.PrimaryKeyConstraint("organization_id", "service", name=op.f("pk_facility_services")),
    )
    op.create_index("ix_facility_services_service", "facility_services", ["service"])
    op.create_table(
        "facility_hours",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("opens_min", sa.SmallInteger(), nullable=False),
        sa.Column("closes_min", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name=op.f("ck_facility_hours_weekday")),
        sa.CheckConstraint("opens_min >= 0 AND closes_min <= 1440 AND opens_min < closes_min",
                           name=op.f("ck_facility_hours_interval")),
        sa.ForeignKeyConstraint(["organization_id"], ["facility_profiles.organization_id"],
                                name=op.f("fk_facility_hours_organization_id_facility_profiles")),
        sa.PrimaryKeyConstraint("organization_id", "weekday", "opens_min", name=op.f("pk_facility_hours")),
    )


def downgrade() -> None:
    op.drop_table("facility_hours")
    op.drop_index("ix_facility_services_service", table_name="facility_services")
    op.drop_table("facility_services")
    op.drop_index("ix_facility_profiles_latitude_longitude", table_name="facility_profiles")
    op.drop_table("facility_profiles")
