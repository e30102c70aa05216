"""Backfill collection_records.health_record_no from the stored public-health records' fields.

Kept apart from the schema change so that the column exists (and new records fill it) before the stored
records are read; it only fills rows still empty, so it can be run again. The numbers are not personal
fields: the stored `fields` carry them in clear.

Revision ID: 20261205_0125
Revises: 20261205_0120
Create Date: 2026-12-05 01:25:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261205_0125"
down_revision: str | None = "20261205_0120"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# form -> the field naming its health record (as in cityhealth.collection.public_health at this revision).
_NUMBER_FIELD = {
    "health_record": "record_no",
    "hypertension_followup": "health_record_no",
    "diabetes_followup": "health_record_no",
}


_BACKFILL = {
    "postgresql": "UPDATE collection_records SET health_record_no = fields->>:name "
    "WHERE form = :form AND health_record_no IS NULL",
    "sqlite": "UPDATE collection_records SET health_record_no = json_extract(fields, '$.' || :name) "
    "WHERE form = :form AND health_record_no IS NULL",
}


def upgrade() -> None:
    statement = sa.text(_BACKFILL[op.get_bind().dialect.name])
    for form, name in _NUMBER_FIELD.items():
        op.execute(statement.bindparams(form=form, name=name))


def downgrade() -> None:
    op.execute(sa.text("UPDATE collection_records SET health_record_no = NULL"))
