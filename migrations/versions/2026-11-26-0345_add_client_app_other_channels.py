"""Let a client app book through further channels besides its home channel.

Revision ID: 20261126_0345
Revises: 20261126_0245
Create Date: 2026-11-26 03:45:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0345"
down_revision: str | None = "20261126_0245"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("client_apps") as batch:
        batch.add_column(sa.Column("other_channels", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("client_apps") as batch:
        batch.drop_column("other_channels")
