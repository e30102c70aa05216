"""Add an organization's postal address and booking phone (both optional): the booking feed publishes them.

Revision ID: 20261205_0410
Revises: 20261126_0345
Create Date: 2026-12-05 04:10:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0410"
down_revision: str | None = "20261126_0345"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("address_line", 128), ("address_city", 64), ("address_district", 64), ("address_state", 64),
            ("postal_code", 6),
            ("booking_phone", 32))


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
