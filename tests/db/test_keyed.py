"""db.keyed: many rows named by a composite key, read, changed and removed in one statement (unnest on
PostgreSQL, chunked tuple IN and executemany on SQLite), on the migrated schema's timeline index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select

from cityhealth.db import keyed
from cityhealth.db.engine import Database
from cityhealth.records.models import TimelineEntry

TIMELINE: Table = TimelineEntry.__table__  # type: ignore[assignment]
KEY = ("organization_id", "form", "record_id")
AT = datetime(2022, 6, 1, tzinfo=UTC)


def _row(org: int, n: int) -> dict[str, Any]:
    return {"organization_id": org, "form": "outpatient_visit", "record_id": f"V{n}", "version": 1,
            "category": "visit", "encounter_kind": "visit", "encounter_no": f"V{n}", "owns_encounter": n % 2 == 0,
            "patient_key": f"P{n}", "resident_id": None, "event_time": AT, "summary": {"dept_name": f"内科{n}"}}


async def _fill(database: Database, count: int) -> None:
    async with database.transaction() as session:
        await keyed.insert_many(session, TIMELINE, [_row(org, n) for org in (1, 2) for n in range(count)])


async def _table(database: Database) -> dict[tuple[int, str], tuple[str | None, int | None]]:
    async with database.transaction() as session:
        rows = await session.execute(select(TIMELINE.c.organization_id, TIMELINE.c.record_id,
                                            TIMELINE.c.patient_key, TIMELINE.c.resident_id))
        return {(org, record_id): (key, resident) for org, record_id, key, resident in rows}


async def test_select_finds_exactly_the_named_rows_past_a_chunk_and_ignores_unknown_keys(database: Database) -> None:
    await _fill(database, 700)
    wanted = [(1, "outpatient_visit", f"V{n}") for n in range(0, 700, 1)] + [(2, "outpatient_visit", "V5"),
                                                                            (3, "outpatient_visit", "V1")]
    async with database.transaction() as session:
        rows = await keyed.select_by_keys(session, TIMELINE, (*KEY, "version"), KEY, wanted)
        owned = await keyed.select_by_keys(session, TIMELINE, KEY, KEY, wanted,
                                           where=[TIMELINE.c.owns_encounter.is_(True)])
        locked = await keyed.select_by_keys(session, TIMELINE, KEY, KEY, wanted[:3], for_update=True)
        nothing = await keyed.select_by_keys(session, TIMELINE, KEY, KEY, [])
    assert sorted((org, record_id) for org, _, record_id, _ in rows) == sorted(
        [(1, f"V{n}") for n in range(700)] + [(2, "V5")])
    assert {record_id for _, _, record_id in owned} == {f"V{n}" for n in range(0, 700, 2)}
    assert len(locked) == 3
    assert nothing == []


async def test_update_sets_each_rows_own_values_and_the_fixed_ones_only_where_allowed(database: Database) -> None:
    await _fill(database, 600)
    changes = [(1, f"P{n}", n + 1000) for n in range(600)] + [(9, "P1", 1)]
    async with database.transaction() as session:
        await keyed.update_by_keys(session, TIMELINE, ("organization_id", "patient_key"), ("resident_id",), changes,
                                   where=[TIMELINE.c.owns_encounter.is_(False)], fixed={"version": 2})
    table = await _table(database)
    for n in range(600):
        assert table[1, f"V{n}"] == (f"P{n}", None if n % 2 == 0 else n + 1000)
        assert table[2, f"V{n}"] == (f"P{n}", None)  # another organization's row of the same key is untouched
    async with database.transaction() as session:
        versions = dict(((org, record_id), version) for org, record_id, version in await session.execute(
            select(TIMELINE.c.organization_id, TIMELINE.c.record_id, TIMELINE.c.version)))
    assert versions[1, "V1"] == 2
    assert versions[1, "V0"] == 1
    assert versions[2, "V1"] == 1


async def test_delete_removes_the_named_rows_only(database: Database) -> None:
    await _fill(database, 550)
    async with database.transaction() as session:
        await keyed.delete_by_keys(session, TIMELINE, KEY, [(1, "outpatient_visit", f"V{n}") for n in range(540)])
        await keyed.delete_by_keys(session, TIMELINE, KEY, [])
    table = await _table(database)
    assert sorted(key for key in table if key[0] == 1) == sorted((1, f"V{n}") for n in range(540, 550))
    assert len([key for key in table if key[0] == 2]) == 550


async def test_new_rows_come_back_as_written_times_in_utc_and_json_as_json(database: Database) -> None:
    await _fill(database, 3)
    async with database.transaction() as session:
        await keyed.insert_many(session, TIMELINE, [])
        rows = (await session.scalars(select(TimelineEntry).where(TimelineEntry.organization_id == 2)
                                      .order_by(TimelineEntry.record_id))).all()
    assert [(row.record_id, row.event_time, row.summary, row.owns_encounter) for row in rows] == [
        (f"V{n}", AT, {"dept_name": f"内科{n}"}, n % 2 == 0) for n in range(3)]
