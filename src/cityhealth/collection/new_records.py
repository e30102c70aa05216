"""A bulk chunk of new records, decided and counted by its columns.

Most chunks of a day's file are new records only: every row an original (action 1) of the sending unit, no
key twice, none of them stored yet, and of forms that feed only the daily, conformance and stored counters.
Each of those is accepted as version 1 (ingest._decide's rule for an original without a stored version), so
the chunk needs no decision per record: its binary COPY rows, built by the prepare processes, are sent as
they are and its counters are tallied over the columns (metrics.count_new_columns). Any other chunk is
decided record by record, as every batch is (ingest.ingest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cityhealth.collection.metrics import counted_by_columns
from cityhealth.collection.prepare import PreparedBatch, PreparedColumns
from cityhealth.collection.rules import RecordError
from cityhealth.collection.validation.validator import FormValidator


@dataclass(slots=True)
class ColumnsPrepared:
    """A chunk as a prepare process sent it back: candidates are made only if it is decided record by record."""

    validators: Mapping[str, FormValidator]  # the code-table generation it was validated against
    received_at: datetime
    columns: PreparedColumns

    @property
    def rejected(self) -> dict[int, tuple[str | None, list[RecordError]]]:
        return self.columns.rejected

    def batch(self) -> PreparedBatch:
        return self.columns.batch(self.validators, self.received_at)


def new_chunk_keys(columns: PreparedColumns, sender_code: str) -> list[tuple[str, str]] | None:
    """The chunk's (form, record id) keys if, once none of them is found stored, it is a chunk of new records
    (above); None if it must be decided record by record whatever is stored."""
    count = len(columns.indexes)
    if (
        not count
        or len(columns.copy_rows) != count  # every row encoded (PostgreSQL)
        or columns.actions.count(1) != count
        or columns.org_codes.count(sender_code) != count
    ):
        return None
    keys = list(zip(columns.forms, columns.record_ids, strict=True))
    if len(set(keys)) != count or not counted_by_columns(set(columns.forms)):
        return None
    return keys
