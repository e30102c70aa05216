"""Every query of the collection domain. PostgreSQL gets COPY and array joins; SQLite executemany."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.models import (
    CodeEntry,
    CodeTableLoad,
    Job,
    JobRejection,
    ManagedRecord,
    RawPayload,
    Record,
    RecordVersion,
)
from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime
from cityhealth.registry.models import Area, Organization

DAILY_COUNTERS = ("received", "accepted", "amended", "revoked", "duplicate", "rejected", "flagged")
# Advisory lock namespace (the two-key form never collides with the audit chain's one-key lock).
_ORG_LOCK_CLASS = 0x0C01


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def pg_driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction.

    The hot statements of ingest run on it directly: fixed SQL, prepared once per connection, without the
    ORM's per-statement work. SQLAlchemy begins its transaction on the connection lazily, with its first
    statement; if none ran yet, one does now, so nothing here ever runs outside the transaction.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    return driver


@dataclass(frozen=True, slots=True)
class Sender:
    id: int
    code: str
    name: str
    kind: str
    area_code: str | None
    active_to: date | None


_SENDER_COLUMNS = (
    Organization.id,
    Organization.code,
    Organization.name,
    Organization.kind,
    Organization.area_code,
    Organization.active_to,
)


async def organization_by_id(session: AsyncSession, organization_id: int) -> Sender | None:
    row = (await session.execute(select(*_SENDER_COLUMNS).where(Organization.id == organization_id))).first()
    return None if row is None else Sender(*row)


async def organization_by_code(session: AsyncSession, code: str) -> Sender | None:
    row = (await session.execute(select(Organization).where(Organization.code == code))).scalar_one_or_none()
    return None if row is None else _sender(row)


async def existing_org_codes(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    rows = await session.execute(select(Organization.code).where(Organization.code.in_(wanted)))
    return set(rows.scalars())


async def organizations(session: AsyncSession) -> list[Sender]:
    return [_sender(row) for row in (await session.execute(select(Organization).order_by(Organization.id))).scalars()]


async def area_names(session: AsyncSession) -> dict[str, str]:
    return dict((await session.execute(select(Area.code, Area.name))).all())


def _sender(row: Organization) -> Sender:
    return Sender(
        id=row.id, code=row.code, name=row.name, kind=row.kind, area_code=row.area_code, active_to=row.active_to
    )


async def lock_organization(session: AsyncSession, organization_id: int) -> None:
    """Serialise one unit's writes: the existence check and the insert must see the same table.

    SQLite already serialises every write transaction: its BEGIN IMMEDIATE took the database's write lock
    with the transaction's first statement.
    """
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.execute("SELECT pg_advisory_xact_lock($1, $2)", _ORG_LOCK_CLASS, organization_id)


@dataclass(slots=True)
class StoredState:
    version: int
    action: int
    payload_hash: str
    conformance: int
    conformance_month: int | None
    fields: dict[str, Any] | None = None


# One primary-key probe per id, whatever the planner believes about the table: the LIMIT keeps the lateral
# subquery from being flattened into a join, and equality on the whole key is always an index scan. The plain
# `record_id = ANY($3)` was planned, while the table's statistics lagged its growth (a fresh table, a first
# bulk load) and in the generic plan of the prepared statement, as a scan of all the unit's records of the
# form with the ids as a filter: every chunk re-read the unit's whole history (measured: 300 ms instead of
# 4 ms for 1,500 ids among 20,000 stored, and ingest falling from 13,000 to 5,500 records/s by 300k).
_PG_EXISTING = (
    "SELECT k.form, k.id, r.version, r.action, r.payload_hash, r.conformance, r.conformance_month "
    "FROM unnest($2::text[], $3::text[]) AS k(form, id) CROSS JOIN LATERAL ("
    "SELECT version, action, payload_hash, conformance, conformance_month FROM collection_records "
    "WHERE organization_id = $1 AND form = k.form AND record_id = k.id LIMIT 1) AS r"
)


_SQLITE_EXISTING = (
    "SELECT record_id, version, action, payload_hash, conformance, conformance_month FROM collection_records "
    "WHERE organization_id = ? AND form = ? AND record_id IN (SELECT value FROM json_each(?))"
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
        rows = await driver.fetch(_PG_EXISTING, organization_id, [form for form, _ in keys], [rid for _, rid in keys])
        for form, rid, version, action, digest, conformance, month in rows:
            found[(form, rid)] = StoredState(version, action, digest, conformance, month)
        return found
    by_form: dict[str, list[str]] = {}
    for form, rid in keys:
        by_form.setdefault(form, []).append(rid)
    # One statement per form whatever the batch size: the ids travel as one JSON array.
    connection = await session.connection()
    for form, ids in by_form.items():
        result = await connection.exec_driver_sql(
            _SQLITE_EXISTING, (organization_id, form, orjson.dumps(ids).decode())
        )
        stored: list[Any] = list(result)
        for rid, version, action, digest, conformance, month in stored:
            found[(form, rid)] = StoredState(version, action, digest, conformance, month)
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
)


_DATETIME_COLUMNS = tuple(
    i for i, name in enumerate(RECORD_COLUMNS) if name in ("event_time", "first_received_at", "received_at")
)
_SQLITE_INSERT = (
    "INSERT INTO collection_records (organization_id, form, record_id, version, action, payload_hash, fields, "
    "event_time, event_month, first_received_at, received_at, conformance, conformance_month, job_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def sqlite_datetime(moment: datetime) -> str:
    """A UTC instant as SQLAlchemy stores it in SQLite (naive UTC, microseconds), for driver-level writes."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


async def insert_records(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """Insert new records (tuples in RECORD_COLUMNS order; `fields` as JSON text).

    PostgreSQL: binary COPY. SQLite: one executemany at the driver, the JSON text stored as it is (the ORM's
    JSON type would parse and re-serialise every payload) and the times written in the ORM's own format.
    """
    if not rows:
        return
    connection = await session.connection()
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.copy_records_to_table("collection_records", records=rows, columns=list(RECORD_COLUMNS))
        return
    times: dict[datetime, str] = {}
    converted = []
    for row in rows:
        values = list(row)
        for i in _DATETIME_COLUMNS:
            moment = values[i]
            text_ = times.get(moment)
            if text_ is None:
                text_ = times[moment] = sqlite_datetime(moment)
            values[i] = text_
        converted.append(tuple(values))
    await connection.exec_driver_sql(_SQLITE_INSERT, converted)


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
    "conformance = :conformance, job_id = :job_id "
    "WHERE organization_id = :b_org AND form = :b_form AND record_id = :b_rid"
).bindparams(bindparam("event_time", type_=UTCDateTime()), bindparam("received_at", type_=UTCDateTime()))


async def update_records(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Replace current versions; each row has the key columns (as b_*) and the new values (`fields` as JSON text)."""
    if not rows:
        return
    connection = await session.connection()
    await connection.execute(_UPDATE_RECORD, rows)


def _insert_for(session: AsyncSession, model: type[Base]) -> Any:
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(model)


async def upsert_add(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], keys: Sequence[str], counters: Sequence[str]
) -> None:
    """Insert rows, or add their counters to the existing row with the same key."""
    if not rows:
        return
    statement = _insert_for(session, model)
    table: Any = model.__table__
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counters}
    )
    await session.execute(statement, rows)


_PG_ADD_COUNTERS = """
WITH daily AS (
  INSERT INTO collection_daily_counts AS t
    (organization_id, day, form, received, accepted, amended, revoked, duplicate, rejected, flagged)
  SELECT $1, * FROM unnest($2::date[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                           $8::bigint[], $9::bigint[], $10::bigint[])
  ON CONFLICT (organization_id, day, form) DO UPDATE SET
    received = t.received + EXCLUDED.received, accepted = t.accepted + EXCLUDED.accepted,
    amended = t.amended + EXCLUDED.amended, revoked = t.revoked + EXCLUDED.revoked,
    duplicate = t.duplicate + EXCLUDED.duplicate, rejected = t.rejected + EXCLUDED.rejected,
    flagged = t.flagged + EXCLUDED.flagged
), rejections AS (
  INSERT INTO collection_rejection_counts AS t (organization_id, day, form, rule, field, count)
  SELECT $1, * FROM unnest($11::date[], $12::text[], $13::text[], $14::text[], $15::bigint[])
  ON CONFLICT (organization_id, day, form, rule, field) DO UPDATE SET count = t.count + EXCLUDED.count
), conformance AS (
  INSERT INTO collection_conformance AS t (organization_id, month, "group", basis, conforming)
  SELECT $1, * FROM unnest($16::integer[], $17::text[], $18::bigint[], $19::bigint[])
  ON CONFLICT (organization_id, month, "group") DO UPDATE SET
    basis = t.basis + EXCLUDED.basis, conforming = t.conforming + EXCLUDED.conforming
), totals AS (
  INSERT INTO collection_monthly_totals AS t (organization_id, month, stored)
  SELECT $1, * FROM unnest($20::integer[], $21::bigint[])
  ON CONFLICT (organization_id, month) DO UPDATE SET stored = t.stored + EXCLUDED.stored
)
SELECT 1
"""


_SQLITE_ADD_DAILY = (
    "INSERT INTO collection_daily_counts (organization_id, day, form, received, accepted, amended, revoked, "
    "duplicate, rejected, flagged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (organization_id, day, form) DO UPDATE SET received = received + excluded.received, "
    "accepted = accepted + excluded.accepted, amended = amended + excluded.amended, "
    "revoked = revoked + excluded.revoked, duplicate = duplicate + excluded.duplicate, "
    "rejected = rejected + excluded.rejected, flagged = flagged + excluded.flagged"
)
_SQLITE_ADD_REJECTIONS = (
    "INSERT INTO collection_rejection_counts (organization_id, day, form, rule, field, count) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (organization_id, day, form, rule, field) "
    "DO UPDATE SET count = count + excluded.count"
)
_SQLITE_ADD_CONFORMANCE = (
    'INSERT INTO collection_conformance (organization_id, month, "group", basis, conforming) VALUES (?, ?, ?, ?, ?) '
    'ON CONFLICT (organization_id, month, "group") DO UPDATE SET basis = basis + excluded.basis, '
    "conforming = conforming + excluded.conforming"
)
_SQLITE_ADD_TOTALS = (
    "INSERT INTO collection_monthly_totals (organization_id, month, stored) VALUES (?, ?, ?) "
    "ON CONFLICT (organization_id, month) DO UPDATE SET stored = stored + excluded.stored"
)


async def add_counters(
    session: AsyncSession,
    organization_id: int,
    daily: list[tuple[Any, ...]],
    rejections: list[tuple[Any, ...]],
    conformance: list[tuple[Any, ...]],
    totals: list[tuple[Any, ...]],
) -> None:
    """Add a batch's counters (rows without the organization, each list sorted by key) in one statement.

    PostgreSQL: one prepared statement whose four upserts take their rows as arrays, whatever the batch.
    SQLite: one driver-level executemany upsert per table.
    """
    if is_postgres(session):

        def columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
            return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]

        driver = await pg_driver(session)
        await driver.execute(
            _PG_ADD_COUNTERS,
            organization_id,
            *columns(daily, 9),
            *columns(rejections, 5),
            *columns(conformance, 4),
            *columns(totals, 2),
        )
        return
    connection = await session.connection()
    for statement, rows, days in (
        (_SQLITE_ADD_DAILY, daily, True),
        (_SQLITE_ADD_REJECTIONS, rejections, True),
        (_SQLITE_ADD_CONFORMANCE, conformance, False),
        (_SQLITE_ADD_TOTALS, totals, False),
    ):
        if rows:
            # Days as the ORM stores them in SQLite (ISO text), since these go to the driver directly.
            await connection.exec_driver_sql(
                statement,
                [(organization_id, row[0].isoformat(), *row[1:]) if days else (organization_id, *row) for row in rows],
            )


async def upsert_replace(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], keys: Sequence[str], values: Sequence[str]
) -> None:
    """Insert rows, or overwrite the named columns of the existing row with the same key."""
    if not rows:
        return
    statement = _insert_for(session, model)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in values}
    )
    await session.execute(statement, rows)


async def delete_keys(
    session: AsyncSession, model: type[Base], keys: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    table: Any = model.__table__
    columns = [table.c[name] for name in keys]
    for start in range(0, len(rows), 300):
        await session.execute(delete(table).where(tuple_(*columns).in_(rows[start : start + 300])))


async def existing_managed(
    session: AsyncSession, organization_id: int, program: str, numbers: Sequence[str]
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(numbers), 500):
        rows = await session.execute(
            select(ManagedRecord.health_record_no).where(
                ManagedRecord.organization_id == organization_id,
                ManagedRecord.program == program,
                ManagedRecord.health_record_no.in_(numbers[start : start + 500]),
            )
        )
        found.update(rows.scalars())
    return found


async def managed_areas(
    session: AsyncSession, organization_id: int, program: str, numbers: Sequence[str]
) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(numbers), 500):
        rows = await session.execute(
            select(ManagedRecord.health_record_no, ManagedRecord.area_code, ManagedRecord.month).where(
                ManagedRecord.organization_id == organization_id,
                ManagedRecord.program == program,
                ManagedRecord.health_record_no.in_(numbers[start : start + 500]),
            )
        )
        for number, area, month in rows:
            found[number] = (area, month)
    return found


async def insert_rows(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(model), rows)


# --- jobs --------------------------------------------------------------------------------------------------


async def job_by_dedupe_key(session: AsyncSession, organization_id: int, dedupe_key: str) -> Job | None:
    return (
        await session.execute(select(Job).where(Job.organization_id == organization_id, Job.dedupe_key == dedupe_key))
    ).scalar_one_or_none()


async def job_for_update(session: AsyncSession, job_id: int) -> Job | None:
    statement = select(Job).where(Job.id == job_id)
    if is_postgres(session):
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def unfinished_jobs(session: AsyncSession) -> list[tuple[int, int]]:
    """(id, bytes received) of the jobs a previous process left queued or running."""
    rows = await session.execute(
        select(Job.id, Job.bytes_received).where(Job.status.in_(("queued", "running"))).order_by(Job.id)
    )
    return [(job_id, size) for job_id, size in rows]


async def job_rejections(session: AsyncSession, job_id: int, after: int, limit: int) -> list[JobRejection]:
    rows = await session.execute(
        select(JobRejection)
        .where(JobRejection.job_id == job_id, JobRejection.position > after)
        .order_by(JobRejection.position)
        .limit(limit)
    )
    return list(rows.scalars())


async def delete_job_rejections(
    session: AsyncSession, organization_id: int, job_id: int, positions: Sequence[int]
) -> None:
    for start in range(0, len(positions), 500):
        await session.execute(
            delete(JobRejection).where(
                JobRejection.organization_id == organization_id,
                JobRejection.job_id == job_id,
                JobRejection.position.in_(positions[start : start + 500]),
            )
        )


# --- raw payloads and code tables ----------------------------------------------------------------------------


async def add_raw_payload(
    session: AsyncSession,
    organization_id: int,
    received_at: datetime,
    content_type: str,
    body: bytes,
    bytes_received: int,
) -> None:
    """Keep a real-time request's body (compressed and encrypted by the caller)."""
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.execute(
            "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
            "VALUES ($1, $2, $3, $4, $5)",
            organization_id,
            received_at,
            content_type,
            body,
            bytes_received,
        )
        return
    connection = await session.connection()
    await connection.exec_driver_sql(
        "INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received) "
        "VALUES (?, ?, ?, ?, ?)",
        (organization_id, sqlite_datetime(received_at), content_type, body, bytes_received),
    )


async def expired_payloads(session: AsyncSession, before: datetime) -> list[RawPayload]:
    rows = await session.execute(
        select(RawPayload).where(RawPayload.received_at < before, RawPayload.purged_at.is_(None))
    )
    return list(rows.scalars())


async def job_payload(session: AsyncSession, job_id: int) -> RawPayload | None:
    return (await session.execute(select(RawPayload).where(RawPayload.job_id == job_id))).scalar_one_or_none()


async def code_generations(session: AsyncSession) -> dict[str, int]:
    """The generation of each loaded code table (asked once per batch: a reload applies to the next batch)."""
    if is_postgres(session):
        driver = await pg_driver(session)
        return dict(await driver.fetch("SELECT table_id, generation FROM collection_code_tables"))
    return dict((await session.execute(select(CodeTableLoad.table_id, CodeTableLoad.generation))).all())


async def code_entries(session: AsyncSession, table_id: str) -> dict[str, str]:
    rows = await session.execute(select(CodeEntry.code, CodeEntry.name).where(CodeEntry.table_id == table_id))
    return dict(rows.all())


async def replace_code_table(
    session: AsyncSession, table_id: str, entries: dict[str, str], source: str, now: datetime
) -> int:
    await session.execute(delete(CodeEntry).where(CodeEntry.table_id == table_id))
    items = [{"table_id": table_id, "code": code, "name": name} for code, name in entries.items()]
    for start in range(0, len(items), 5000):
        await session.execute(insert(CodeEntry), items[start : start + 5000])
    current = (
        await session.execute(select(CodeTableLoad).where(CodeTableLoad.table_id == table_id))
    ).scalar_one_or_none()
    generation = 1 if current is None else current.generation + 1
    await upsert_replace(
        session,
        CodeTableLoad,
        [{"table_id": table_id, "generation": generation, "entries": len(items), "source": source, "loaded_at": now}],
        ["table_id"],
        ["generation", "entries", "source", "loaded_at"],
    )
    return generation


async def count_records(session: AsyncSession, organization_id: int | None = None) -> int:
    statement = select(func.count()).select_from(Record)
    if organization_id is not None:
        statement = statement.where(Record.organization_id == organization_id)
    return int((await session.execute(statement)).scalar_one())
