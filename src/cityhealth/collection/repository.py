"""Every query of the collection domain. PostgreSQL gets COPY and array joins; SQLite executemany."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, func, insert, select, text, tuple_, update
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

# Advisory lock namespace (the two-key form never collides with the audit chain's one-key lock).
_ORG_LOCK_CLASS = 0x0C01


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True, slots=True)
class Sender:
    id: int
    code: str
    name: str
    kind: str
    area_code: str | None
    active_to: date | None


async def organization_by_id(session: AsyncSession, organization_id: int) -> Sender | None:
    row = (await session.execute(select(Organization).where(Organization.id == organization_id))).scalar_one_or_none()
    return None if row is None else _sender(row)


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

    SQLite already serialises every write transaction (BEGIN IMMEDIATE); the statement still runs so that
    the transaction has begun before COPY uses the raw connection.
    """
    if is_postgres(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:c, :o)"), {"c": _ORG_LOCK_CLASS, "o": organization_id}
        )
    else:
        await session.execute(text("SELECT 1"))


@dataclass(slots=True)
class StoredState:
    version: int
    action: int
    payload_hash: str
    conformance: int
    conformance_month: int | None
    fields: dict[str, Any] | None = None


async def existing_records(
    session: AsyncSession, organization_id: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredState]:
    """The stored state of the given (form, record id) keys of one unit."""
    found: dict[tuple[str, str], StoredState] = {}
    if not keys:
        return found
    if is_postgres(session):
        statement = text(
            "SELECT r.form, r.record_id, r.version, r.action, r.payload_hash, r.conformance, r.conformance_month "
            "FROM collection_records r JOIN unnest(CAST(:forms AS text[]), CAST(:ids AS text[])) AS k(form, rid) "
            "ON r.form = k.form AND r.record_id = k.rid WHERE r.organization_id = :org"
        )
        rows = await session.execute(
            statement, {"forms": [k[0] for k in keys], "ids": [k[1] for k in keys], "org": organization_id}
        )
        for form, rid, version, action, digest, conformance, month in rows:
            found[(form, rid)] = StoredState(version, action, digest, conformance, month)
        return found
    by_form: dict[str, list[str]] = {}
    for form, rid in keys:
        by_form.setdefault(form, []).append(rid)
    # One statement per form whatever the batch size: the ids travel as one JSON array.
    statement = text(
        "SELECT record_id, version, action, payload_hash, conformance, conformance_month "
        "FROM collection_records WHERE organization_id = :org AND form = :form "
        "AND record_id IN (SELECT value FROM json_each(:ids))"
    )
    for form, ids in by_form.items():
        rows = await session.execute(statement, {"org": organization_id, "form": form, "ids": orjson.dumps(ids).decode()})
        for rid, version, action, digest, conformance, month in rows:
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


_DATETIME_COLUMNS = tuple(i for i, name in enumerate(RECORD_COLUMNS) if name in ("event_time", "first_received_at", "received_at"))
_SQLITE_INSERT = (
    f"INSERT INTO collection_records ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
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
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
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


async def unfinished_job_ids(session: AsyncSession) -> list[int]:
    rows = await session.execute(select(Job.id).where(Job.status.in_(("queued", "running"))).order_by(Job.id))
    return list(rows.scalars())


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


async def expired_payloads(session: AsyncSession, before: datetime) -> list[RawPayload]:
    rows = await session.execute(
        select(RawPayload).where(RawPayload.received_at < before, RawPayload.purged_at.is_(None))
    )
    return list(rows.scalars())


async def job_payload(session: AsyncSession, job_id: int) -> RawPayload | None:
    return (await session.execute(select(RawPayload).where(RawPayload.job_id == job_id))).scalar_one_or_none()


async def code_generations(session: AsyncSession) -> dict[str, int]:
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
