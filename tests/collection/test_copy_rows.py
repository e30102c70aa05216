"""New records' binary COPY rows built by the prepare processes: the values ingest would store, and stored as
they are column for column (NULLs, dates before and after 2000, escapes, tabs, newlines, non-ASCII)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from cityhealth.collection import copy_rows
from cityhealth.collection.ingest import _decide
from cityhealth.collection.models import Record
from cityhealth.collection.prepare import Collector, prepare_columns
from cityhealth.collection.repository import record_copy
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.collection import make_record

RECEIVED = datetime(2022, 6, 15, 1, 30, 0, 123456, tzinfo=UTC)
FIELDS = orjson.dumps(
    {"a": 'quote " and \\ backslash', "b": "tab\there\nnew line\r\n", "c": "鼓楼医院 ✓", "d": {"e": None}},
    option=orjson.OPT_SORT_KEYS,
).decode()


def decoded(row: bytes) -> list[bytes | None]:
    """The record's fields of one encoded row, the batch's to follow (the test's own reading of the format)."""
    (count,) = struct.unpack_from(">h", row, 0)
    assert count == len(copy_rows.COLUMNS)
    offset, fields = 2, []
    for _ in copy_rows.RECORD_COLUMNS:
        (length,) = struct.unpack_from(">i", row, offset)
        offset += 4
        if length < 0:
            fields.append(None)
        else:
            fields.append(row[offset : offset + length])
            offset += length
    assert offset == len(row)
    return fields


def moment_of(field: bytes | None) -> datetime:
    assert field is not None
    return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=struct.unpack(">q", field)[0])


def integer(field: bytes | None) -> int:
    assert field is not None
    return int.from_bytes(field, "big", signed=True)


def test_prepared_copy_rows_hold_the_values_a_new_record_is_stored_with(settings: Settings) -> None:
    collector = Collector(settings)
    standard = load_standard()
    validators = {code: FormValidator(form, standard, {}) for code, form in standard.forms.items()}
    on_time, late = RECEIVED - timedelta(hours=2), RECEIVED - timedelta(days=30)
    records = [
        make_record("outpatient_visit", "H0001", "v-on-time", on_time),
        make_record("outpatient_visit", "H0001", "v-late", late),
        make_record("health_record", "H0001", "h-1", on_time),
        make_record("patient_master_index", "H0001", "p-1", on_time),  # personal fields: the sealed payload
    ]
    forms = ["outpatient_visit", "outpatient_visit", "health_record", "patient_master_index"]
    columns = prepare_columns(collector, validators, forms, records, {}, RECEIVED, copy_rows=True)
    batch = columns.batch(validators, RECEIVED)
    assert len(batch.candidates) == 4
    for candidate in batch.candidates:
        assert _decide(candidate, None, lambda *_: pytest.fail("a new original is accepted"))
        assert candidate.copy_row is not None
        expected = [
            candidate.form.code,
            candidate.record_id,
            1,
            candidate.action,
            candidate.digest,
            candidate.payload,
            candidate.event_time,
            candidate.event_month,
            candidate.conformance,
            candidate.conformance_month,
            records[candidate.index].get("record_no"),  # the number a health record holds; None for the others
        ]
        form, rid, version, action, digest, payload, event_time, month, conformance, conformance_month, number = (
            decoded(candidate.copy_row)
        )
        assert [
            form and form.decode(),
            rid and rid.decode(),
            integer(version),
            integer(action),
            digest and digest.decode(),
            payload and payload.decode(),
            moment_of(event_time),
            integer(month),
            integer(conformance),
            None if conformance_month is None else integer(conformance_month),
            number and number.decode(),
        ] == expected
    assert [c.conformance for c in batch.candidates[:3]] == [
        copy_rows.CONFORMING,
        copy_rows.IN_BASIS,
        copy_rows.NOT_COUNTED,
    ]


def test_copy_rows_are_built_only_when_asked_for(settings: Settings) -> None:
    standard = load_standard()
    validators = {code: FormValidator(form, standard, {}) for code, form in standard.forms.items()}
    record = make_record("outpatient_visit", "H0001", "v-1", RECEIVED - timedelta(hours=1))
    columns = prepare_columns(Collector(settings), validators, ["outpatient_visit"], [record], {}, RECEIVED)
    assert columns.copy_rows == []
    assert columns.batch(validators, RECEIVED).candidates[0].copy_row is None


def test_without_payloads_of_new_records_only_their_rows_carry_them(settings: Settings) -> None:
    standard = load_standard()
    validators = {code: FormValidator(form, standard, {}) for code, form in standard.forms.items()}
    at = RECEIVED - timedelta(hours=1)
    new = make_record("outpatient_visit", "H0001", "v-1", at)
    amendment = make_record("outpatient_visit", "H0001", "v-2", at, action=2)
    patient = make_record("patient_master_index", "H0001", "p-1", at)  # personal fields: the sealed payload
    forms = ["outpatient_visit", "outpatient_visit", "patient_master_index"]
    records = [new, amendment, patient]
    collector = Collector(settings)
    full = prepare_columns(collector, validators, forms, records, {}, RECEIVED, copy_rows=True)
    lean = prepare_columns(collector, validators, forms, records, {}, RECEIVED, copy_rows=True, payloads_of_new=False)
    assert lean.payloads == ["", full.payloads[1], ""]  # an amendment is stored by UPDATE: it keeps its payload
    assert lean.copy_rows[:2] == full.copy_rows[:2]
    payload_column = RECORD_COLUMNS_INDEX["fields"]
    sealed = orjson.loads(decoded(lean.copy_rows[2])[payload_column] or b"")
    assert set(sealed["id_number"]) == {"enc", "lookup"}  # encrypted as stored, like the full payload's
    assert {k: v for k, v in sealed.items() if k not in collector.sensitive["patient_master_index"]} == {
        k: v for k, v in orjson.loads(full.payloads[2]).items() if k not in collector.sensitive["patient_master_index"]
    }
    plain = prepare_columns(collector, validators, forms[:1], records[:1], {}, RECEIVED, payloads_of_new=False)
    assert plain.payloads == full.payloads[:1]  # without COPY rows the payload is the only copy


RECORD_COLUMNS_INDEX = {name: index for index, name in enumerate(copy_rows.RECORD_COLUMNS)}


def encoded_rows() -> list[bytes]:
    return [
        copy_rows.record_part(
            copy_rows.form_field("outpatient_visit"), "v-1\t\\n", 1, "0" * 32, FIELDS.encode(),
            copy_rows.timestamp(datetime(2022, 6, 14, 23, 5, 7, 1, tzinfo=UTC)), 202206, copy_rows.CONFORMING, 202206,
            None,
        ),
        copy_rows.record_part(
            copy_rows.form_field("health_record"), "档案-2", 1, "f" * 32, FIELDS.encode(),
            copy_rows.timestamp(datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)), 200001,
            copy_rows.NOT_COUNTED, None,
            "32010600000000001",
        ),
    ]


async def stored(database: Database, organization_id: int) -> list[tuple[Any, ...]]:
    async with database.transaction() as session:
        rows = await session.execute(
            select(Record.form, Record.record_id, Record.version, Record.action, Record.payload_hash, Record.fields,
                   Record.event_time, Record.event_month, Record.first_received_at, Record.received_at,
                   Record.conformance, Record.conformance_month, Record.job_id, Record.health_record_no)
            .where(Record.organization_id == organization_id)
            .order_by(Record.form)
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize("job_id", [42, None])
async def test_encoded_new_records_are_stored_column_for_column(database: Database, job_id: int | None) -> None:
    if database.is_sqlite:
        pytest.skip("binary COPY is PostgreSQL's; SQLite's chunks are inserted from the candidates")
    async with database.transaction() as session:
        await record_copy.copy_new_records(session, 7, RECEIVED, job_id, encoded_rows())
    fields = orjson.loads(FIELDS)
    assert await stored(database, 7) == [
        ("health_record", "档案-2", 1, 1, "f" * 32, fields, datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
         200001, RECEIVED, RECEIVED, 0, None, job_id, "32010600000000001"),
        ("outpatient_visit", "v-1\t\\n", 1, 1, "0" * 32, fields, datetime(2022, 6, 14, 23, 5, 7, 1, tzinfo=UTC),
         202206, RECEIVED, RECEIVED, 2, 202206, job_id, None),
    ]
