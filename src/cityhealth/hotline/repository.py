"""The calls' queries: city lines, calls and their events (a report's few statements), agents' changes."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.hotline.call_events import Event
from cityhealth.hotline.models import Call, CallChange, CallEvent, CityLine

_CALLS: Table = Call.__table__  # type: ignore[assignment]
_EVENTS: Table = CallEvent.__table__  # type: ignore[assignment]
# The columns a report needs of a call it already holds.
_HELD = (_CALLS.c.id, _CALLS.c.telephony_call_id, _CALLS.c.category, _CALLS.c.classified_by,
         _CALLS.c.caller_hash, _CALLS.c.caller_cipher, _CALLS.c.ended_at, _CALLS.c.started_at)


# On PostgreSQL a report's rows go in as one array per column (`unnest`): one statement and a few
# parameters however many rows, where an executemany binds and converts every value of every row.
_CALL_COLUMNS = (
    ("telephony_call_id", "text"), ("state", "text"), ("city_line_id", "integer"), ("city_code", "text"),
    ("started_at", "timestamptz"), ("business_date", "date"), ("start_hour", "smallint"), ("ivr_path", "text"),
    ("queue", "text"), ("queued_at", "timestamptz"), ("answered_at", "timestamptz"), ("agent", "text"),
    ("ended_at", "timestamptz"), ("caller_hash", "text"), ("caller_cipher", "text"),
    ("reported_category", "text"), ("category", "text"), ("classified_by", "text"), ("outcome", "text"),
    ("note", "text"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
)
_EVENT_COLUMNS = (
    ("call_id", "integer"), ("event_id", "text"), ("kind", "text"), ("at", "timestamptz"), ("value", "text"),
    ("category", "text"), ("fingerprint", "text"), ("received_at", "timestamptz"),
)


def _unnest_insert(table: str, columns: tuple[tuple[str, str], ...], tail: str = "") -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"${n}::{kind}[]" for n, (_, kind) in enumerate(columns, start=1))
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail}"  # noqa: S608 - constant names


# What a report sets of a call it holds already: its projection (the agents' columns and its key stay).
_PROJECTED = tuple(name for name, _ in _CALL_COLUMNS
                   if name not in ("telephony_call_id", "classified_by", "note", "created_at"))
# New and held calls in one statement; `xmax = 0` tells a row this statement inserted from one it updated.
_PG_UPSERT_CALLS = _unnest_insert(
    "hotline_calls", _CALL_COLUMNS,
    " ON CONFLICT (telephony_call_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in _PROJECTED)
    + " RETURNING id, telephony_call_id, xmax = 0 AS inserted")
_PG_INSERT_EVENTS = _unnest_insert("hotline_call_events", _EVENT_COLUMNS)
_PG_EVENTS_OF = ("SELECT call_id, event_id, kind, at, value, category, fingerprint FROM hotline_call_events "
                 "WHERE call_id = ANY($1::integer[])")


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _columns(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> list[list[Any]]:
    return [[row[name] for row in rows] for name, _ in columns]


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, in the session's transaction (begun by the report's reads)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():  # nothing ran yet: let SQLAlchemy begin the transaction it owns
        await connection.execute(select(1))
    return driver


async def city_lines(session: AsyncSession, lines: Collection[str] | None = None) -> list[CityLine]:
    """The city lines named (every one when None), in line order."""
    statement = select(CityLine).order_by(CityLine.line)
    if lines is not None:
        statement = statement.where(CityLine.line.in_(lines))
    return list((await session.scalars(statement)).all())


async def city_line(session: AsyncSession, line: str) -> CityLine | None:
    return (await session.scalars(select(CityLine).where(CityLine.line == line))).one_or_none()


async def city_names(session: AsyncSession) -> dict[str, str]:
    """City code to city name, as the lines name them."""
    rows = await session.execute(select(CityLine.city_code, CityLine.city_name).order_by(CityLine.id))
    return {code: name for code, name in rows}


async def held_calls(session: AsyncSession, telephony_ids: Collection[str]) -> dict[str, Any]:
    """The calls already held among `telephony_ids`, locked until the report's transaction ends."""
    # Locked in one order by every report, so two reports sharing calls wait for each other, never deadlock.
    statement = (select(*_HELD).where(_CALLS.c.telephony_call_id.in_(telephony_ids))
                 .order_by(_CALLS.c.telephony_call_id).with_for_update())
    return {row.telephony_call_id: row for row in await session.execute(statement)}


async def events_of(session: AsyncSession, call_ids: Collection[int]) -> dict[int, list[Event]]:
    """The stored events of each call."""
    found: dict[int, list[Event]] = {call_id: [] for call_id in call_ids}
    if not call_ids:
        return found
    if _is_postgres(session):  # the driver's rows as they come: a report reads thousands
        driver = await _driver(session)
        rows = await driver.fetch(_PG_EVENTS_OF, list(call_ids))
        for call_id, event_id, kind, at, value, category, fingerprint in rows:
            found[call_id].append(Event(event_id, kind, at, value, category, fingerprint))
        return found
    statement = select(_EVENTS.c.call_id, _EVENTS.c.event_id, _EVENTS.c.kind, _EVENTS.c.at, _EVENTS.c.value,
                       _EVENTS.c.category, _EVENTS.c.fingerprint).where(_EVENTS.c.call_id.in_(call_ids))
    for row in await session.execute(statement):
        found[row.call_id].append(Event(row.event_id, row.kind, row.at, row.value, row.category, row.fingerprint))
    return found


async def write_calls(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, tuple[int, bool]]:
    """The calls' projections, new calls (`id` None) and held ones alike: by telephony id, each call's id and
    whether this report inserted it. A call another report inserted meanwhile comes back as not inserted."""
    if not rows:
        return {}
    if _is_postgres(session):  # one upsert, the rows in one array per column
        driver = await _driver(session)
        found = await driver.fetch(_PG_UPSERT_CALLS, *_columns(rows, _CALL_COLUMNS))
        return {row["telephony_call_id"]: (row["id"], row["inserted"]) for row in found}
    # SQLite writes one transaction at a time: the new calls in one statement, the held ones by key.
    new = [row for row in rows if row["id"] is None]
    held = [{name: row[name] for name in ("id", *_PROJECTED)} for row in rows if row["id"] is not None]
    written = {row["telephony_call_id"]: (row["id"], False) for row in rows if row["id"] is not None}
    if new:
        statement = (sqlite.insert(_CALLS).on_conflict_do_nothing(index_elements=["telephony_call_id"])
                     .returning(_CALLS.c.id, _CALLS.c.telephony_call_id))
        inserted = await session.execute(statement, [{k: v for k, v in row.items() if k != "id"} for row in new])
        written.update((tid, (call_id, True)) for call_id, tid in inserted)
    if held:
        await session.execute(update(Call), held)
    return written


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if _is_postgres(session):
        driver = await _driver(session)
        await driver.execute(_PG_INSERT_EVENTS, *_columns(rows, _EVENT_COLUMNS))
        return
    await session.execute(insert(_EVENTS), rows)


async def call(session: AsyncSession, call_id: int) -> Call | None:
    return await session.get(Call, call_id)


async def call_for_update(session: AsyncSession, call_id: int) -> Call | None:
    return (await session.scalars(select(Call).where(Call.id == call_id).with_for_update())).one_or_none()


async def call_events(session: AsyncSession, call_id: int) -> list[CallEvent]:
    statement = select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.at, CallEvent.event_id)
    return list((await session.scalars(statement)).all())


async def call_changes(session: AsyncSession, call_id: int) -> list[CallChange]:
    statement = select(CallChange).where(CallChange.call_id == call_id).order_by(CallChange.at, CallChange.id)
    return list((await session.scalars(statement)).all())


async def change_by_key(session: AsyncSession, call_id: int, request_key: str) -> CallChange | None:
    statement = select(CallChange).where(CallChange.call_id == call_id, CallChange.request_key == request_key)
    return (await session.scalars(statement)).one_or_none()


async def calls_page(session: AsyncSession, *, agent: str | None, before_id: int | None, limit: int) -> list[Call]:
    """Newest first; only `agent`'s when given."""
    statement = select(Call).order_by(Call.id.desc()).limit(limit)
    if agent is not None:
        statement = statement.where(Call.agent == agent)
    if before_id is not None:
        statement = statement.where(Call.id < before_id)
    return list((await session.scalars(statement)).all())


async def calls_from(session: AsyncSession, caller_hash: str, limit: int) -> list[Call]:
    """A caller's calls (by the number's HMAC), newest first."""
    statement = select(Call).where(Call.caller_hash == caller_hash).order_by(Call.id.desc()).limit(limit)
    return list((await session.scalars(statement)).all())

