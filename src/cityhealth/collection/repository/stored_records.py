"""Stored records: the unit lock, the existence probe, inserts, and superseding and updating current versions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import Record, RecordVersion
from cityhealth.collection.repository import code_tables
from cityhealth.collection.repository.dialect import is_postgres, pg_driver, sqlite_datetime
from cityhealth.db.types import UTCDateTime

# Advisory lock namespace (the two-key form never collides with the audit chain's one-key lock).
_ORG_LOCK_CLASS = 0x0C01


_PG_LOCK_AND_GENERATIONS = (
    "SELECT pg_advisory_xact_lock($1, $2)::text, "
    "(SELECT json_object_agg(table_id, generation) FROM collection_code_tables)::text"
)
# session.info keys: what this transaction already did (a group commit decides several batches in one).
_LOCKED = "cityhealth.collection.locked_units"
_GENERATIONS = code_tables.GENERATIONS_KEY


async def begin_unit_writes(session: AsyncSession, organization_id: int, *, lock: bool = True) -> dict[str, int]:
    """Serialise one unit's writes (lock=True) and read the loaded code tables' generations, in one round trip
    and once per transaction: every later batch of the transaction already holds both.

    The lock: the existence check and the insert must see the same table. SQLite already serialises every
    write transaction: its BEGIN IMMEDIATE took the database's write lock with the transaction's first
    statement. The generations are read in the same statement as the lock (the lock's statement snapshot may
    predate a reload committed while it waited: that reload applies to the next transaction, as one
    committed a moment later would).
    """
    info = session.sync_session.info
    locked: set[int] = info.setdefault(_LOCKED, set())
    generations: dict[str, int] | None = info.get(_GENERATIONS)
    must_lock = lock and organization_id not in locked
    if generations is not None and not must_lock:
        return generations
    if not is_postgres(session):
        if generations is None:
            generations = await code_tables.code_generations(session)
    elif must_lock:
        driver = await pg_driver(session)
        _, found = await driver.fetchrow(_PG_LOCK_AND_GENERATIONS, _ORG_LOCK_CLASS, organization_id)
        generations = generations or {table: int(n) for table, n in orjson.loads(found or "{}").items()}
    else:
        generations = await code_tables.code_generations(session)
    if must_lock:
        locked.add(organization_id)
    info[_GENERATIONS] = generations
    return generations


@dataclass(slots=True)
class StoredState:
    version: int
    action: int
    payload_hash: str
    conformance: int
    conformance_month: int | None
    health_record_no: str | None = None  # the number a public-health record holds
    fields: dict[str, Any] | None = None


# One primary-key probe per id, whatever the planner believes about the table: the LIMIT keeps the lateral
# subquery from being flattened into a join, and equality on the whole key is always an index scan. The plain
# `record_id = ANY($3)` was planned, while the table's statistics lagged its growth (a fresh table, a first
# bulk load) and in the generic plan of the prepared statement, as a scan of all the unit's records of the
# form with the ids as a filter: every chunk re-read the unit's whole history (measured: 300 ms instead of
# 4 ms for 1,500 ids among 20,000 stored, and ingest falling from 13,000 to 5,500 records/s by 300k).
# The keys travel as two JSON arrays (one text parameter each) rather than text[]: the driver checks every
# element of an array parameter in Python, twice the batch's size in calls, where orjson writes a list at once.
_PG_EXISTING = (
    "SELECT k.form, k.id, r.version, r.action, r.payload_hash, r.conformance, r.conformance_month, r.health_record_no "
    "FROM ROWS FROM (json_array_elements_text($2::json), json_array_elements_text($3::json)) AS k(form, id) "
    "CROSS JOIN LATERAL ("
    "SELECT version, action, payload_hash, conformance, conformance_month, health_record_no "
    "FROM collection_records WHERE organization_id = $1 AND form = k.form AND record_id = k.id LIMIT 1) AS r"
)


_SQLITE_EXISTING = (
    "SELECT record_id, version, action, payload_hash, conformance, conformance_month, health_record_no "
    "FROM collection_records WHERE organization_id = ? AND form = ? AND record_id IN (SELECT value FROM json_each(?))"
)


async def existing_records(
    session: AsyncSession, organization_id: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredState]:
    """The stored state of the given (form, record id) keys of one unit."""
    found: dict[tuple[str, str], StoredState] = {}
    if not keys:
        return found
    if is_postgres(session):
        # One statement for the whole batch, probing the primary key once per key (see _PG_EXISTING): a
        # real-time batch mixes forms, and each round trip is taken while holding the unit's lock.
        driver = await pg_driver(session)
        rows = await driver.fetch(
            _PG_EXISTING,
            organization_id,
            orjson.dumps([form for form, _ in keys]).decode(),
            orjson.dumps([rid for _, rid in keys]).decode(),
        )
        for form, rid, version, action, digest, conformance, month, number in rows:
            found[(form, rid)] = StoredState(version, action, digest, conformance, month, number)
        return found
    by_form: dict[str, list[str]] = {}
    for form, rid in keys:
        by_form.setdefault(form, []).append(rid)
    # One statement per form whatever the batch size: the ids travel as one JSON array.
    connection = await session.connection()
    for form, ids in by_form.items():
        result = await connection.exec_driver_sql(_SQLITE_EXISTING, (organization_id, form, orjson.dumps(ids).decode()))
        stored: list[Any] = list(result)
        for rid, version, action, digest, conformance, month, number in stored:
            found[(form, rid)] = StoredState(version, action, digest, conformance, month, number)
    return found


RECORD_COLUMNS = (
    "organization_id",
    "form",
    "record_id",
    "version",
    "action",
    "payload_hash",
    "fields",
    "event_time",
    "event_month",
    "first_received_at",
    "received_at",
    "conformance",
    "conformance_month",
    "job_id",
    "health_record_no",
)
# What varies from one new record to the next (the rest is the batch's: unit, version 1, times received, job).
NEW_RECORD_FIELDS = (
    "form",
    "record_id",
    "action",
    "payload_hash",
    "fields",
    "event_time",
    "event_month",
    "conformance",
    "conformance_month",
    "health_record_no",
)


_SQLITE_INSERT = (
    "INSERT INTO collection_records (organization_id, form, record_id, version, action, payload_hash, fields, "
    "event_time, event_month, first_received_at, received_at, conformance, conformance_month, job_id, "
    "health_record_no) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A real-time batch's new records in one statement: one JSON document (sent as bytes), its `fields` embedded as
# they are. Binary COPY spent a real-time batch's largest share of CPU in the driver, encoding three timestamps a
# row (about 7,000 instructions each, against a tenth of that for the whole row here); it stays for bulk chunks,
# whose size makes its own costs (two round trips, and the server parsing nothing) the smaller ones.
_PG_INSERT_JSON = (
    "INSERT INTO collection_records (organization_id, form, record_id, version, action, payload_hash, fields, "
    "event_time, event_month, first_received_at, received_at, conformance, conformance_month, job_id, "
    "health_record_no) "
    "SELECT $1, r.form, r.record_id, 1, r.action, r.payload_hash, r.fields, r.event_time, r.event_month, $2, $2, "
    "r.conformance, r.conformance_month, $3, r.health_record_no "
    "FROM json_to_recordset(convert_from($4, 'UTF8')::json) AS r(form text, record_id text, action smallint, "
    "payload_hash text, fields json, event_time timestamptz, event_month integer, conformance smallint, "
    "conformance_month integer, health_record_no text)"
)
# Up to this many new records go in the one statement; more (a bulk chunk) by COPY.
JSON_INSERT_MAX_ROWS = 1_000
# The same for records that may already be stored: a stored key is left as it is, and the keys inserted come back.
_PG_INSERT_JSON_UNLESS_STORED = (
    _PG_INSERT_JSON + " ON CONFLICT (organization_id, form, record_id) DO NOTHING RETURNING form, record_id"
)


def _json_document(rows: list[tuple[Any, ...]]) -> bytes:
    fragment = orjson.Fragment
    # One dict display per row (the keys are NEW_RECORD_FIELDS): no zip, no tuple rebuilt around the payload.
    return orjson.dumps(
        [
            {
                "form": form,
                "record_id": rid,
                "action": action,
                "payload_hash": digest,
                "fields": fragment(fields),
                "event_time": event_time,
                "event_month": event_month,
                "conformance": conformance,
                "conformance_month": conformance_month,
                "health_record_no": number,
            }
            for form, rid, action, digest, fields, event_time, event_month, conformance, conformance_month,
            number in rows
        ]
    )


async def insert_unless_stored(
    session: AsyncSession, organization_id: int, received_at: datetime, job_id: int | None, rows: list[tuple[Any, ...]]
) -> set[tuple[str, str]]:
    """PostgreSQL, at most JSON_INSERT_MAX_ROWS rows: insert_records for records of which some may be stored
    already, in one statement. A key already stored keeps its row; the (form, record id) keys inserted are
    returned. The existence probe and the insert of a batch of originals in one round trip (ingest.py)."""
    driver = await pg_driver(session)
    inserted = await driver.fetch(
        _PG_INSERT_JSON_UNLESS_STORED, organization_id, received_at, job_id, _json_document(rows)
    )
    return {(form, rid) for form, rid in inserted}


async def insert_records(
    session: AsyncSession, organization_id: int, received_at: datetime, job_id: int | None, rows: list[tuple[Any, ...]]
) -> None:
    """Insert new records of one unit received at one time: tuples in NEW_RECORD_FIELDS order, `fields` as JSON
    (text, or its UTF-8 bytes).

    PostgreSQL: one INSERT of a JSON document, or binary COPY past JSON_INSERT_MAX_ROWS. SQLite: one executemany
    at the driver, the JSON text stored as it is (the ORM's JSON type would parse and re-serialise every payload)
    and the times written in the ORM's own format.
    """
    if not rows:
        return
    if is_postgres(session):
        driver = await pg_driver(session)
        if len(rows) <= JSON_INSERT_MAX_ROWS:
            document = _json_document(rows)
            await driver.execute(_PG_INSERT_JSON, organization_id, received_at, job_id, document)
            return
        await driver.copy_records_to_table(
            "collection_records",
            records=_in_slices(
                [
                    (organization_id, form, rid, 1, action, digest,
                     fields.decode() if type(fields) is bytes else fields, event_time, event_month, received_at,
                     received_at, conformance, conformance_month, job_id, number)
                    for form, rid, action, digest, fields, event_time, event_month, conformance, conformance_month,
                    number in rows
                ]
            ),
            columns=list(RECORD_COLUMNS),
        )
        return
    received = sqlite_datetime(received_at)
    times: dict[datetime, str] = {}
    converted = []
    for form, rid, action, digest, fields, event_time, event_month, conformance, conformance_month, number in rows:
        if type(fields) is bytes:  # stored as text, as the ORM's JSON type reads it
            fields = fields.decode()
        moment = times.get(event_time)
        if moment is None:
            moment = times[event_time] = sqlite_datetime(event_time)
        converted.append(
            (organization_id, form, rid, 1, action, digest, fields, moment, event_month, received, received,
             conformance, conformance_month, job_id, number)
        )
    connection = await session.connection()
    await connection.exec_driver_sql(_SQLITE_INSERT, converted)


_COPY_SLICE_ROWS = 250


async def _in_slices(rows: list[tuple[Any, ...]]) -> AsyncIterator[tuple[Any, ...]]:
    """The rows for COPY, letting the event loop run between slices: the driver encodes a whole list in one
    go (10,000 rows held the server's loop for 30-110 ms)."""
    for start in range(0, len(rows), _COPY_SLICE_ROWS):
        for row in rows[start : start + _COPY_SLICE_ROWS]:
            yield row
        await asyncio.sleep(0)


async def supersede(
    session: AsyncSession, organization_id: int, keys: Sequence[tuple[str, str]], now: datetime
) -> None:
    """Copy the current versions of these records into the history before they change."""
    by_form: dict[str, list[str]] = {}
    for form, rid in keys:
        by_form.setdefault(form, []).append(rid)
    for form, ids in by_form.items():
        for start in range(0, len(ids), 500):
            source = select(
                Record.organization_id,
                Record.form,
                Record.record_id,
                Record.version,
                Record.action,
                Record.payload_hash,
                Record.fields,
                Record.event_time,
                Record.received_at,
                bindparam("now", now, type_=RecordVersion.superseded_at.type),
            ).where(
                Record.organization_id == organization_id,
                Record.form == form,
                Record.record_id.in_(ids[start : start + 500]),
            )
            await session.execute(
                insert(RecordVersion).from_select(
                    [
                        "organization_id",
                        "form",
                        "record_id",
                        "version",
                        "action",
                        "payload_hash",
                        "fields",
                        "event_time",
                        "received_at",
                        "superseded_at",
                    ],
                    source,
                )
            )


_UPDATE_RECORD = text(
    "UPDATE collection_records SET version = :version, action = :action, payload_hash = :payload_hash, "
    "fields = :fields, event_time = :event_time, event_month = :event_month, received_at = :received_at, "
    "conformance = :conformance, job_id = :job_id, health_record_no = :health_record_no "
    "WHERE organization_id = :b_org AND form = :b_form AND record_id = :b_rid"
).bindparams(bindparam("event_time", type_=UTCDateTime()), bindparam("received_at", type_=UTCDateTime()))


async def update_records(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Replace current versions; each row has the key columns (as b_*) and the new values (`fields` as JSON text)."""
    if not rows:
        return
    connection = await session.connection()
    await connection.execute(_UPDATE_RECORD, rows)


async def live_holders(session: AsyncSession, organization_id: int, form: str, numbers: Sequence[str]) -> set[str]:
    """Which of these health record numbers a live (not revoked) record of the unit's form still holds."""
    found: set[str] = set()
    for start in range(0, len(numbers), 500):
        rows = await session.execute(
            select(Record.health_record_no)
            .where(
                Record.organization_id == organization_id,
                Record.form == form,
                Record.health_record_no.in_(numbers[start : start + 500]),
                Record.action != 3,
            )
            .distinct()
        )
        found.update(number for number in rows.scalars() if number is not None)
    return found


async def count_records(session: AsyncSession, organization_id: int | None = None) -> int:
    statement = select(func.count()).select_from(Record)
    if organization_id is not None:
        statement = statement.where(Record.organization_id == organization_id)
    return int((await session.execute(statement)).scalar_one())
