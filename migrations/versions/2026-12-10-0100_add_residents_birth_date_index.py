"""Index residents by birth date: patient linkage blocks a record without a usable ID number on its birth date
(with or without the name), and without the index each such record scans the master index. On PostgreSQL the
index is built concurrently, so a populated master index keeps taking writes while it is built.

Revision ID: 20261210_0100
Revises: 20261209_0600
Create Date: 2026-12-10 01:00:00 UTC
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261210_0100"
down_revision: str | None = "20261209_0600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index("ix_residents_birth_date", "residents", ["birth_date"], postgresql_concurrently=True,
                            if_not_exists=True)
    else:
        op.create_index("ix_residents_birth_date", "residents", ["birth_date"])


def downgrade() -> None:
    op.drop_index("ix_residents_birth_date", table_name="residents")
