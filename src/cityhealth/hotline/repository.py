"""The calls' queries: city lines, calls and their events (a report's few statements), agents' changes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.counters import add_counts
from cityhealth.db.driver import is_postgres, pg_driver
from cityhealth.hotline.call_events import Event
from cityhealth.hotline.call_tallies import TallyKey
from cityhealth.hotline.models import Call, CallChange, CallEvent, CallTally, CityLine

_CALLS: Table = Call.__table__  # type: ignore[assignment]
_EVENTS: Table = CallEvent.__table__  # type: ignore[assignment]
_TALLIES: Table = CallTally.__table__  # type: ignore[assignment]


class HeldCall(NamedTuple):
    """What a report needs of a call the platform holds already."""

    id: int
    telephony_call_id: str
    category: str | None
    classified_by: str | None
    caller_hash: str | None
    caller_cipher: str | None
    ended_at: datetime | None
    started_at: datetime | None
    city_line_id: int | None
    city_code: str | None
    business_date: date | None  # with the start hour and the outcome: the key the call is tallied under
    start_hour: int | None
    outcome: str | None


_HELD = tuple(_CALLS.c[name] for name in HeldCall._fields)

# On PostgreSQL a report's statements run on the driver, one each however many rows, and their keys and rows
# travel as one JSON document (orjson writes it at once, where the driver checks every element of an array
# parameter in Python). Each key is one probe of its index (LATERAL, with LIMIT 1 or OFFSET 0 so that the
# planner cannot flatten it into a join): a plain `= ANY(...)` was planned as a scan of the whole table while
# its statistics lagged its growth (a fresh table; a prepared statement's generic plan).
_KEYS = "json_array_elements_text(convert_from($1, 'UTF8')::json)"
# Held calls are locked in the order of the keys (sorted): two reports sharing calls never deadlock.
_PG_HELD = (f"SELECT {', '.join(f'c.{name}' for name in HeldCall._fields)} FROM {_KEYS} AS k(tid) "  # noqa: S608
            "CROSS JOIN LATERAL (SELECT * FROM hotline_calls WHERE telephony_call_id = k.tid LIMIT 1 FOR UPDATE) AS c")
_PG_EVENTS_OF = ("SELECT e.call_id, e.event_id, e.kind, e.at, e.value, e.category, e.fingerprint "  # noqa: S608
                 f"FROM {_KEYS} AS k(id) CROSS JOIN LATERAL ("
                 "SELECT * FROM hotline_call_events WHERE call_id = k.id::integer OFFSET 0) AS e")
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


def _json_insert(table: str, columns: tuple[tuple[str, str], ...], tail: str = "") -> str:
    names = ", ".join(name for name, _ in columns)
    typed = ", ".join(f"{name} {kind}" for name, kind in columns)
    return (f"INSERT INTO {table} ({names}) SELECT {names} "  # noqa: S608 - constant names
            f"FROM json_to_recordset(convert_from($1, 'UTF8')::json) AS r({typed}){tail}")


# What a report sets of a call it holds already: its projection (the agents' columns and its key stay).
_PROJECTED = tuple(name for name, _ in _CALL_COLUMNS
                   if name not in ("telephony_call_id", "classified_by", "note", "created_at"))
# New and held calls in one statement; `xmax = 0` tells a row this statement inserted from one it updated.
_PG_UPSERT_CALLS = _json_insert(
    "hotline_calls", _CALL_COLUMNS,
    " ON CONFLICT (telephony_call_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in _PROJECTED)
    + " RETURNING id, telephony_call_id, xmax = 0 AS inserted")
_PG_INSERT_EVENTS = _json_insert("hotline_call_events", _EVENT_COLUMNS)
_TALLY_KEYS = TallyKey._fields
_PG_ADD_TALLIES = _json_insert(
    "hotline_call_tallies", (("business_date", "date"), ("start_hour", "smallint"), ("city_code", "text"),
                             ("category", "text"), ("outcome", "text"), ("calls", "integer")),
    f" ON CONFLICT ({', '.join(_TALLY_KEYS)}) DO UPDATE SET calls = hotline_call_tallies.calls + EXCLUDED.calls")


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


async def held_calls(session: AsyncSession, telephony_ids: Collection[str]) -> dict[str, HeldCall]:
    """The calls already held among `telephony_ids`, locked until the report's transaction ends."""
    # Locked in one order by every report, so two reports sharing calls wait for each other, never deadlock.
    keys = sorted(telephony_ids)
    if is_postgres(session):
        driver = await pg_driver(session)
        return {row[1]: HeldCall(*row) for row in await driver.fetch(_PG_HELD, orjson.dumps(keys))}
    statement = (select(*_HELD).where(_CALLS.c.telephony_call_id.in_(keys))
                 .order_by(_CALLS.c.telephony_call_id).with_for_update())
    return {row.telephony_call_id: HeldCall(*row) for row in await session.execute(statement)}


async def events_of(session: AsyncSession, call_ids: Collection[int]) -> dict[int, list[Event]]:
    """The stored events of each call."""
    found: dict[int, list[Event]] = {call_id: [] for call_id in call_ids}
    if not call_ids:
        return found
    if is_postgres(session):  # the driver's rows as they come: a report reads thousands
        driver = await pg_driver(session)
        rows = await driver.fetch(_PG_EVENTS_OF, orjson.dumps(list(call_ids)))
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
    if is_postgres(session):  # one upsert
        driver = await pg_driver(session)
        found = await driver.fetch(_PG_UPSERT_CALLS, orjson.dumps(rows))
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
    if is_postgres(session):
        driver = await pg_driver(session)
        await driver.execute(_PG_INSERT_EVENTS, orjson.dumps(rows))
        return
    await session.execute(insert(_EVENTS), rows)


async def add_tallies(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add the moves (call_tallies.Moves.rows: in key order, one row a key) to the calls' tallies."""
    if not rows:
        return
    if is_postgres(session):  # the report's hot path: one statement on the driver, like its other writes
        driver = await pg_driver(session)
        await driver.execute(_PG_ADD_TALLIES, orjson.dumps(rows))
        return
    await add_counts(session, _TALLIES, _TALLY_KEYS, rows)


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

