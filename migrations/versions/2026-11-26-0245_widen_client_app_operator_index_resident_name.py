"""Widen client_apps.operator to 255 characters; index residents.name for the master-index search.

The reference data's operator descriptions run to 130 characters: PostgreSQL refused them at 128.
Residents are searched by exact name (and area) in a table of millions of rows.

Revision ID: 20261126_0245
Revises: 20261126_0230
Create Date: 2026-11-26 02:45:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0245"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("client_apps") as batch:
        batch.alter_column(
            "operator", existing_type=sa.String(length=128), type_=sa.String(length=255), existing_nullable=True
        )
    op.create_index(op.f("ix_residents_name"), "residents", ["name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_residents_name"), table_name="residents")
    with op.batch_alter_table("client_apps") as batch:
        batch.alter_column(
            "operator", existing_type=sa.String(length=255), type_=sa.String(length=128), existing_nullable=True
        )
