"""Add collection_records.health_record_no: the number a public-health record holds, indexed to find its holders.

Revision ID: 20261205_0120
Revises: 20261205_0030
Create Date: 2026-12-05 01:20:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0120"
down_revision: str | None = "20261205_0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collection_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_record_no", sa.String(length=17), nullable=True))
        # Partial: the other forms leave it empty, so their inserts never touch the index.
        batch_op.create_index(
            "ix_collection_records_health_record_no",
            ["organization_id", "form", "health_record_no"],
            unique=False,
            postgresql_where=sa.text("health_record_no IS NOT NULL"),
            sqlite_where=sa.text("health_record_no IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("collection_records", schema=None) as batch_op:
        batch_op.drop_index("ix_collection_records_health_record_no")
        batch_op.drop_column("health_record_no")
