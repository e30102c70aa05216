"""New records are stored column for column as ingest hands them over, by either way of inserting them: the
one-statement JSON insert of a real-time batch and the COPY of a bulk chunk (PostgreSQL), or SQLite's
executemany."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from cityhealth.collection.models import Record
from cityhealth.collection.repository import stored_records
from cityhealth.db.engine import Database

RECEIVED = datetime(2022, 6, 15, 1, 30, 0, 123456, tzinfo=UTC)
# Key order, escapes and non-ASCII text as the canonical payload has them: stored as it is.
FIELDS = orjson.dumps({"a": 'quote " and \\ backslash', "b": [1, 2.5, None], "c": "鼓楼医院", "d": {"e": True}},
                      option=orjson.OPT_SORT_KEYS).decode()


def new_rows() -> list[tuple[Any, ...]]:
    return [
        ("outpatient_visit", "v-1", 1, "0" * 32, FIELDS, datetime(2022, 6, 14, 23, 5, 7, 1, tzinfo=UTC), 202206, 2,
         202206, None),
        ("health_record", "h-1", 1, "f" * 32, FIELDS, datetime(2022, 5, 31, 16, 0, tzinfo=UTC), 202206, 0, None,
         "32010600000000001"),
    ]


async def stored(database: Database, organization_id: int) -> list[tuple[Any, ...]]:
    async with database.transaction() as session:
        rows = await session.execute(
            select(Record.form, Record.record_id, Record.version, Record.action, Record.payload_hash, Record.fields,
                   Record.event_time, Record.event_month, Record.first_received_at, Record.received_at,
                   Record.conformance, Record.conformance_month, Record.job_id, Record.health_record_no)
            .where(Record.organization_id == organization_id)
            .order_by(Record.record_id)
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize("largest_json_insert", [stored_records.JSON_INSERT_MAX_ROWS, 0], ids=["json", "copy"])
async def test_new_records_are_stored_column_for_column(
    database: Database, monkeypatch: pytest.MonkeyPatch, largest_json_insert: int
) -> None:
    monkeypatch.setattr(stored_records, "JSON_INSERT_MAX_ROWS", largest_json_insert)
    async with database.transaction() as session:
        await stored_records.insert_records(session, 7, RECEIVED, 42, new_rows())
    expected = [
        (form, rid, 1, action, digest, orjson.loads(fields), event_time, month, RECEIVED, RECEIVED, conformance,
         conformance_month, 42, number)
        for form, rid, action, digest, fields, event_time, month, conformance, conformance_month, number in new_rows()
    ]
    assert await stored(database, 7) == sorted(expected, key=lambda row: row[1])
