"""Add the bulletin's publication profiles: the publisher's block each issue prints, kept by the editor.

Revision ID: 20261209_0100
Revises: 20261208_0610
Create Date: 2026-12-09 01:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261209_0100"
down_revision: str | None = "20261208_0610"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "publication_profiles",
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("publisher", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("postcode", sa.String(length=6), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("fax", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=False),
        sa.Column("responsible_editor", sa.String(length=40), nullable=False),
        sa.Column("print_run", sa.Integer(), nullable=False),
        sa.Column("qr1_caption", sa.String(length=40), nullable=False),
        sa.Column("qr1_url", sa.String(length=500), nullable=False),
        sa.Column("qr2_caption", sa.String(length=40), nullable=False),
        sa.Column("qr2_url", sa.String(length=500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.PrimaryKeyConstraint("region_code", name=op.f("pk_publication_profiles")),
    )


def downgrade() -> None:
    op.drop_table("publication_profiles")
