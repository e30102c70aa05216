"""Index the stored records in the order received, which the records room's linker follows (a keyset page after
received_at, organization, form and record id). The timestamp leads, so an insert lands at the index's right edge.
On PostgreSQL it is built concurrently: a month's stored records keep taking uploads while it is built.

Revision ID: 20261209_0302
Revises: 20261205_0125
Create Date: 2026-12-09 03:02:00 UTC
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261209_0302"
down_revision: str | None = "20261205_0125"  # the collection branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    columns = ["received_at", "organization_id", "form", "record_id"]
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index("ix_collection_records_received", "collection_records", columns,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index("ix_collection_records_received", "collection_records", columns)


def downgrade() -> None:
    op.drop_index("ix_collection_records_received", table_name="collection_records")
