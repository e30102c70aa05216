"""The quality counters a batch adds to: daily counts, rejections by rule, conformance, monthly totals."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository import raw_payloads
from cityhealth.collection.repository.dialect import is_postgres, pg_driver

DAILY_COUNTERS = ("received", "accepted", "amended", "revoked", "duplicate", "rejected", "flagged")

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
), raw AS (
  INSERT INTO collection_raw_payloads (organization_id, received_at, content_type, body, bytes_received)
  SELECT * FROM unnest($22::integer[], $23::timestamptz[], $24::text[], $25::bytea[], $26::bigint[])
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

    PostgreSQL: one prepared statement whose four upserts take their rows as arrays, whatever the batch; the
    raw payloads queued in the transaction (raw_payloads.queue_raw_payload) are written by it too, saving the
    real-time batch a round trip. SQLite: one driver-level executemany upsert per table.
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
            *columns(raw_payloads.take_queued(session), 5),
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
