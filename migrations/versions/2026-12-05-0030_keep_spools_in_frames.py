"""Keep bulk-upload spools in the database as sealed frames, readable by every worker.

The jobs' and raw payloads' `spool_path` (a file under var/) becomes `spool_id` (the frames' key). A path
left by an older version names no frames: its job reads as purged (it can no longer be re-run).

Revision ID: 20261205_0030
Revises: 20261126_0330
Create Date: 2026-12-05 00:30:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0030"
down_revision: str | None = "20261126_0330"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collection_spool_frames",
        sa.Column("spool_id", sa.String(length=64), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("spool_id", "frame_index", name=op.f("pk_collection_spool_frames")),
    )
    op.create_index(
        op.f("ix_collection_spool_frames_written_at"), "collection_spool_frames", ["written_at"], unique=False
    )
    for table in ("collection_jobs", "collection_raw_payloads"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("spool_path", new_column_name="spool_id", existing_type=sa.String(length=255))


def downgrade() -> None:
    for table in ("collection_jobs", "collection_raw_payloads"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("spool_id", new_column_name="spool_path", existing_type=sa.String(length=255))
    op.drop_index(op.f("ix_collection_spool_frames_written_at"), table_name="collection_spool_frames")
    op.drop_table("collection_spool_frames")
