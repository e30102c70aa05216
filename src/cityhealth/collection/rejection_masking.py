"""Masking the rejected rows that bulk jobs stored before every field was masked (issue #12).

New rows are stored masked (`ingest.masked_row`, `rules.make_error`); the export and the drill-down mask
again as rows leave. This rewrites the old ones in the database itself, so that a backup or a database
reader no longer finds whole ID or mobile numbers there either.
"""

from __future__ import annotations

from cityhealth.collection.ingest import masked_row
from cityhealth.collection.repository import rejections
from cityhealth.db.engine import Database
from cityhealth.personal_numbers import scrub, scrub_json

BATCH_ROWS = 500


async def mask_stored_rejections(database: Database, *, batch_rows: int = BATCH_ROWS) -> int:
    """Mask every stored rejected row that still holds a whole number; how many were rewritten.

    Each batch is a short transaction of its own (a running job keeps writing between them); a row already
    masked is left alone, so running it again finds nothing to do.
    """
    rewritten = 0
    after = (0, 0)
    while True:
        async with database.transaction() as session:
            page = await rejections.rejections_after(session, after, batch_rows)
            if not page:
                return rewritten
            for row in page:
                record_id = None if row.record_id is None else scrub(row.record_id)
                errors = scrub_json(row.errors)
                kept = masked_row(row.row)
                if (record_id, errors, kept) != (row.record_id, row.errors, row.row):
                    await rejections.rewrite_rejection(session, row, record_id=record_id, errors=errors, row=kept)
                    rewritten += 1
            after = (page[-1].job_id, page[-1].position)
