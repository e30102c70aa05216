"""Add auth_failure_windows: failed authentications counted per source address and window.

Revision ID: 20261204_2200
Revises: 20261126_0310
Create Date: 2026-12-04 22:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261204_2200"
down_revision: str | None = "20261126_0310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_failure_windows",
        sa.Column("source_address", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_detail", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("source_address", "window_start", name=op.f("pk_auth_failure_windows")),
    )


def downgrade() -> None:
    op.drop_table("auth_failure_windows")
