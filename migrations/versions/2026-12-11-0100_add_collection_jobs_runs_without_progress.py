"""Count the runs of a bulk job's task since its last committed chunk, so that a job whose record takes its worker
down is stopped with the reason after a few runs instead of being retried for ever.

Revision ID: 20261211_0100
Revises: 20261210_0100
Create Date: 2026-12-11 01:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261211_0100"
down_revision: str | None = "20261210_0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table, SQLite without copying it.
    op.add_column("collection_jobs",
                  sa.Column("runs_without_progress", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("collection_jobs") as batch:
        batch.drop_column("runs_without_progress")
