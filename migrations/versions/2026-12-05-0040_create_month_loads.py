"""Create month_loads: months whose data is still being loaded, so that their bulletin is not taken as final.

Revision ID: 20261205_0040
Revises: 20261126_0230
Create Date: 2026-12-05 00:40:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0040"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = ("reporting",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "month_loads",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_month_loads")),
    )


def downgrade() -> None:
    op.drop_table("month_loads")
