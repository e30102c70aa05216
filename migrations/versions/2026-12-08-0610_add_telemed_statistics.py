"""Add the telemed statistics: the month volumes' lab and imaging counts, the study's organization, opening balances.

Revision ID: 20261208_0610
Revises: 20261207_0500
Create Date: 2026-12-08 06:10:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_0610"
down_revision: str | None = "20261208_0600"  # re-chained after the pathology branch (merger: re-chain)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VOLUMES = "telemed_month_volumes"


def upgrade() -> None:
    op.add_column(VOLUMES, sa.Column("reports_uploaded", sa.Integer(), server_default="0", nullable=False))
    op.add_column(VOLUMES, sa.Column("specimens_routed", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        VOLUMES,
        sa.Column("images", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), server_default="0", nullable=False),
    )
    op.add_column("telemed_imaging_studies", sa.Column("organization_id", sa.Integer(), nullable=True))
    op.create_table(
        "telemed_opening_balances",
        sa.Column("network_code", sa.String(length=20), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("consultations", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=96), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("consultations >= 0", name=op.f("ck_telemed_opening_balances_consultations")),
        sa.ForeignKeyConstraint(
            ["network_code"],
            ["telemed_networks.code"],
            name=op.f("fk_telemed_opening_balances_network_code_telemed_networks"),
        ),
        sa.PrimaryKeyConstraint("network_code", "as_of", name=op.f("pk_telemed_opening_balances")),
    )


def downgrade() -> None:
    op.drop_table("telemed_opening_balances")
    with op.batch_alter_table("telemed_imaging_studies") as batch:
        batch.drop_column("organization_id")
    with op.batch_alter_table(VOLUMES) as batch:
        batch.drop_column("images")
        batch.drop_column("specimens_routed")
        batch.drop_column("reports_uploaded")
