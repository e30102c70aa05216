"""Create booking_family_links: a resident who books for a family member, with the member's consent.

Revision ID: 20261205_0430
Revises: 20261205_0420
Create Date: 2026-12-05 04:30:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0430"
down_revision: str | None = "20261205_0420"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_family_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manager_resident_id", sa.Integer(), nullable=False),
        sa.Column("member_resident_id", sa.Integer(), nullable=False),
        sa.Column("relationship", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent_basis", sa.String(length=32), nullable=True),
        sa.Column("consented_by", sa.String(length=96), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consent_note", sa.String(length=200), nullable=True),
        sa.Column("revoked_by", sa.String(length=96), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'active', 'revoked')", name=op.f("ck_booking_family_links_status")),
        sa.CheckConstraint("relationship IN ('child', 'parent', 'spouse', 'other')",
                           name=op.f("ck_booking_family_links_relationship")),
        sa.CheckConstraint("consent_basis IS NULL OR consent_basis IN "
                           "('guardian_declaration', 'member_confirmation', 'recorded_consent')",
                           name=op.f("ck_booking_family_links_consent_basis")),
        sa.CheckConstraint("manager_resident_id <> member_resident_id", name=op.f("ck_booking_family_links_not_self")),
        sa.CheckConstraint("status <> 'active' OR consented_at IS NOT NULL",
                           name=op.f("ck_booking_family_links_active_has_consent")),
        sa.ForeignKeyConstraint(["manager_resident_id"], ["residents.id"],
                                name=op.f("fk_booking_family_links_manager_resident_id_residents")),
        sa.ForeignKeyConstraint(["member_resident_id"], ["residents.id"],
                                name=op.f("fk_booking_family_links_member_resident_id_residents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_family_links")),
        sa.UniqueConstraint("manager_resident_id", "member_resident_id",
                            name=op.f("uq_booking_family_links_manager_resident_id_member_resident_id")),
    )
    op.create_index("ix_booking_family_links_member_resident_id", "booking_family_links", ["member_resident_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_booking_family_links_member_resident_id", table_name="booking_family_links")
    op.drop_table("booking_family_links")
