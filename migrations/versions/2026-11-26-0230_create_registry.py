"""Create the registry: areas, organizations, departments, practitioners, client apps, residents.

Revision ID: 20261126_0230
Revises:
Create Date: 2026-11-26 02:30:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0230"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("registry",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=12), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "level IN ('province', 'city', 'district', 'reporting_unit')", name=op.f("ck_areas_level")
        ),
        sa.ForeignKeyConstraint(["parent_code"], ["areas.code"], name=op.f("fk_areas_parent_code_areas")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_areas")),
    )
    op.create_index(op.f("ix_areas_parent_code"), "areas", ["parent_code"], unique=False)
    op.create_table(
        "area_mappings",
        sa.Column("reporting_unit_code", sa.String(length=12), nullable=False),
        sa.Column("district_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_code"], ["areas.code"], name=op.f("fk_area_mappings_district_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["reporting_unit_code"], ["areas.code"], name=op.f("fk_area_mappings_reporting_unit_code_areas")
        ),
        sa.PrimaryKeyConstraint("reporting_unit_code", "district_code", name=op.f("pk_area_mappings")),
    )
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("short_name", sa.String(length=64), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=True),
        sa.Column("ws218_type", sa.String(length=8), nullable=True),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("active_from", sa.Date(), nullable=False),
        sa.Column("active_to", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('hospital', 'community_health_centre', 'district_platform', 'external')",
            name=op.f("ck_organizations_kind"),
        ),
        sa.CheckConstraint(
            "active_to IS NULL OR active_to >= active_from", name=op.f("ck_organizations_active_dates")
        ),
        sa.ForeignKeyConstraint(["area_code"], ["areas.code"], name=op.f("fk_organizations_area_code_areas")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["organizations.id"], name=op.f("fk_organizations_parent_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("code", name=op.f("uq_organizations_code")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
        sa.UniqueConstraint("uscc", name=op.f("uq_organizations_uscc")),
    )
    op.create_index(op.f("ix_organizations_area_code"), "organizations", ["area_code"], unique=False)
    op.create_index(op.f("ix_organizations_parent_id"), "organizations", ["parent_id"], unique=False)
    op.create_table(
        "residents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_number_hash", sa.String(length=64), nullable=False),
        sa.Column("id_number_enc", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.SmallInteger(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_enc", sa.String(length=255), nullable=True),
        sa.Column("address_area_code", sa.String(length=12), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("sex IN (0, 1, 2, 9)", name=op.f("ck_residents_sex")),
        sa.ForeignKeyConstraint(
            ["address_area_code"], ["areas.code"], name=op.f("fk_residents_address_area_code_areas")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residents")),
        sa.UniqueConstraint("id_number_hash", name=op.f("uq_residents_id_number_hash")),
    )
    op.create_index(op.f("ix_residents_address_area_code"), "residents", ["address_area_code"], unique=False)
    op.create_index("ix_residents_phone_hash", "residents", ["phone_hash"], unique=False)
    op.create_table(
        "client_apps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("operator", sa.String(length=128), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('online_12320', 'phone', 'clinic', 'third_party')",
            name=op.f("ck_client_apps_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_client_apps_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_apps")),
        sa.UniqueConstraint("code", name=op.f("uq_client_apps_code")),
        sa.UniqueConstraint("name", name=op.f("uq_client_apps_name")),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("subject_code", sa.String(length=16), nullable=False),
        sa.Column("local_code", sa.String(length=32), nullable=False),
        sa.Column("local_name", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_departments_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint(
            "organization_id", "local_code", name=op.f("uq_departments_organization_id_local_code")
        ),
    )
    op.create_index(op.f("ix_departments_organization_id"), "departments", ["organization_id"], unique=False)
    op.create_table(
        "practitioners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("staff_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=32), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_practitioners_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_practitioners_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practitioners")),
        sa.UniqueConstraint(
            "organization_id", "staff_code", name=op.f("uq_practitioners_organization_id_staff_code")
        ),
    )
    op.create_index(op.f("ix_practitioners_department_id"), "practitioners", ["department_id"], unique=False)
    op.create_index(
        op.f("ix_practitioners_organization_id"), "practitioners", ["organization_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_practitioners_organization_id"), table_name="practitioners")
    op.drop_index(op.f("ix_practitioners_department_id"), table_name="practitioners")
    op.drop_table("practitioners")
    op.drop_index(op.f("ix_departments_organization_id"), table_name="departments")
    op.drop_table("departments")
    op.drop_table("client_apps")
    op.drop_index("ix_residents_phone_hash", table_name="residents")
    op.drop_index(op.f("ix_residents_address_area_code"), table_name="residents")
    op.drop_table("residents")
    op.drop_index(op.f("ix_organizations_parent_id"), table_name="organizations")
    op.drop_index(op.f("ix_organizations_area_code"), table_name="organizations")
    op.drop_table("organizations")
    op.drop_table("area_mappings")
    op.drop_index(op.f("ix_areas_parent_code"), table_name="areas")
    op.drop_table("areas")
