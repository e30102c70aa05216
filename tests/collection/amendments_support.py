"""What the counter tests under amendments and revocations share: sending records as a unit at a Nanjing moment,
the store read back, and the recount every counter must equal."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import BUSINESS_TZ, SimulatedClock, business_date
from cityhealth.collection.models import (
    Conformance,
    DailyCount,
    ManagedCount,
    ManagedRecord,
    MonthlyTotal,
    Record,
    RecordVersion,
)
from cityhealth.collection.public_health import PROGRAM_OF_FORM
from cityhealth.collection.standard import load_standard
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import make_record
from tests.factories.security import admin_headers, headers_for, machine

WINDOW = timedelta(hours=24)
FORMS = load_standard().forms
ACTION_STATUS = {1: "accepted", 2: "amended", 3: "revoked"}


def nanjing(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=BUSINESS_TZ)


async def move_to(app: FastAPI, clock: SimulatedClock, moment: datetime, *units: Unit) -> None:
    """Move the clock, with fresh tokens for the units (theirs expire five minutes after issue)."""
    clock.set(moment)
    for unit in units:
        unit.headers = await headers_for(
            app, machine(Scope.COLLECTION_UPLOAD, organization_id=unit.org.id, client_id=f"c-{unit.code}")
        )


async def send(client: httpx.AsyncClient, unit: Unit, form: str, *records: dict[str, Any]) -> list[str]:
    response = await post_records(client, unit, form, list(records))
    assert response.status_code == 200, response.text
    return [item["status"] for item in response.json()["records"]]


# --- the recount -------------------------------------------------------------------------------------------


async def stored_versions(database: Database) -> list[tuple[int, str, str, int, int, datetime, datetime]]:
    """Every stored version: (org, form, record id, version, action, event time, received at)."""
    async with database.transaction() as session:
        current = (await session.execute(select(Record))).scalars().all()
        older = (await session.execute(select(RecordVersion))).scalars().all()
    rows = [(r.organization_id, r.form, r.record_id, r.version, r.action, r.event_time, r.received_at)
            for r in current]
    rows += [(v.organization_id, v.form, v.record_id, v.version, v.action, v.event_time, v.received_at)
             for v in older]
    return rows


async def daily_counts(database: Database) -> dict[tuple[int, str, date], dict[str, int]]:
    async with database.transaction() as session:
        rows = (await session.execute(select(DailyCount))).scalars().all()
    return {
        (row.organization_id, row.form, row.day): {
            name: getattr(row, name)
            for name in ("received", "accepted", "amended", "revoked", "duplicate", "rejected", "flagged")
        }
        for row in rows
    }


async def assert_counters_equal_a_recount(database: Database) -> None:
    """Daily stored outcomes, monthly totals and conformance cells, recounted from the store."""
    versions = await stored_versions(database)
    stored: dict[tuple[int, str, date], Counter[str]] = defaultdict(Counter)
    monthly: Counter[tuple[int, int]] = Counter()
    for org, form, _, _, action, _, received in versions:
        day = business_date(received)
        stored[(org, form, day)][ACTION_STATUS[action]] += 1
        if FORMS[form].kind != "workload":
            monthly[(org, day.year * 100 + day.month)] += 1
    counted = await daily_counts(database)
    for key in set(stored) | set(counted):
        expected = stored.get(key, Counter())
        got = counted.get(key, {})
        assert {name: got.get(name, 0) for name in ACTION_STATUS.values()} == {
            name: expected[name] for name in ACTION_STATUS.values()
        }, key
        assert got.get("received", 0) == sum(
            got.get(name, 0) for name in ("accepted", "amended", "revoked", "duplicate", "rejected")
        ), key
    async with database.transaction() as session:
        rows = (await session.execute(select(MonthlyTotal))).scalars()
        totals = {(t.organization_id, t.month): t.stored for t in rows}
        cells = {
            (c.organization_id, c.month, c.group): (c.basis, c.conforming)
            for c in (await session.execute(select(Conformance))).scalars()
        }
    assert {key: n for key, n in totals.items() if n} == dict(monthly)
    # Conformance as domain.md defines it: an accepted (not revoked) record of the group, in the month of its
    # first version's event, conforming when that first version came within the window and is still the only one.
    first: dict[tuple[int, str, str], tuple[datetime, datetime]] = {}
    latest: dict[tuple[int, str, str], tuple[int, int]] = {}
    for org, form, rid, version, action, event, received in versions:
        if version == 1:
            first[(org, form, rid)] = (event, received)
        if version >= latest.get((org, form, rid), (0, 0))[0]:
            latest[(org, form, rid)] = (version, action)
    expected_cells: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for (org, form, rid), (version, action) in latest.items():
        group = FORMS[form].group
        if group is None or action == 3:
            continue
        event, received = first[(org, form, rid)]
        local = event.astimezone(BUSINESS_TZ)
        cell = expected_cells[(org, local.year * 100 + local.month, group)]
        cell[0] += 1
        cell[1] += int(version == 1 and received - event <= WINDOW)
    assert {key: value for key, value in cells.items() if value != (0, 0)} == {
        key: tuple(value) for key, value in expected_cells.items()
    }


def visit(unit: Unit, rid: str, event: datetime, **overrides: Any) -> dict[str, Any]:
    return make_record("outpatient_visit", unit.code, rid, event, **overrides)


# --- one record's life ---------------------------------------------------------------------------------------


async def conformance(database: Database, unit: Unit, month: int = 202206) -> tuple[int, int]:
    async with database.transaction() as session:
        cells = (await session.execute(
            select(Conformance).where(Conformance.organization_id == unit.org.id, Conformance.month == month)
        )).scalars().all()
    found = {cell.group: (cell.basis, cell.conforming) for cell in cells}
    return found.get("outpatient", (0, 0))


async def quality(app: FastAPI, client: httpx.AsyncClient, month: str = "2022-06") -> dict[str, Any]:
    response = await client.get("/api/collection/quality", params={"month": month}, headers=await admin_headers(app))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def enrol(app: FastAPI, client: httpx.AsyncClient, unit: Unit, group: str) -> None:
    response = await client.post("/api/collection/enrolments", headers=await admin_headers(app),
                                 json={"organization_code": unit.code, "group": group, "start_date": "2022-06-01"})
    assert response.status_code == 201, response.text


async def assert_managed_equal_the_live_holders(database: Database) -> None:
    """The managed numbers are those a live record holds (read from its fields), and the counts sum to them."""
    async with database.transaction() as session:
        records = (await session.execute(select(Record).where(Record.form.in_(PROGRAM_OF_FORM)))).scalars().all()
        managed = (await session.execute(select(ManagedRecord))).scalars().all()
        counts = (await session.execute(select(ManagedCount))).scalars().all()
    held = {
        (r.organization_id, PROGRAM_OF_FORM[r.form][0], r.fields[PROGRAM_OF_FORM[r.form][1]])
        for r in records
        if r.action != 3
    }
    assert {(m.organization_id, m.program, m.health_record_no) for m in managed} == held
    per_area: Counter[tuple[int, str, str]] = Counter()
    for count in counts:
        per_area[(count.organization_id, count.area_code, count.program)] += count.added
    assert +per_area == Counter((m.organization_id, m.area_code, m.program) for m in managed)
