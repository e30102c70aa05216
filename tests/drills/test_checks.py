"""The drills' own checks, shown to fail: a database put in a state a defect would leave is reported by them.

A drill passes when its checks find nothing; these tests make sure that "nothing" is not a check that cannot
see. Each builds a clean state through the API, sees the check pass, breaks one thing behind the platform's back
and sees the check name it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from cityhealth.booking.models import BookingSession
from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import DailyCount
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.drills.checks import recount, seats
from tests.factories.booking import add_resident, book, build_world, online_app, publish
from tests.factories.collection import add_organization, make_record
from tests.factories.security import headers_for, machine


async def _booked_session(app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock,
                          settings: Any, bookings: int) -> int:
    world = await build_world(database, clock.now())
    session = await publish(client, app, world, capacity=3)
    for seq in range(bookings):
        _, id_number = await add_resident(database, settings, clock.now(), seq + 1)
        response = await book(client, app, online_app(world), session["id"], id_number)
        assert response.status_code == 201, response.text
    return int(session["id"])


async def _set(database: Database, session_id: int, **values: Any) -> None:
    async with database.transaction() as tx:
        await tx.execute(update(BookingSession).where(BookingSession.id == session_id).values(**values))


async def test_seats_names_each_counter_that_differs_from_the_active_bookings(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, settings: Any
) -> None:
    session_id = await _booked_session(app, client, database, clock, settings, bookings=2)
    clean = await seats(database)
    assert (clean.active, clean.oversold, clean.mismatched) == (2, 0, {})

    async with database.transaction() as tx:
        row = await tx.get(BookingSession, session_id)
        assert row is not None
        booked, slot_map = row.booked, row.slot_map
    await _set(database, session_id, booked=booked + 1)  # a slot counted that no booking holds
    assert (await seats(database)).mismatched == {session_id: ("booked",)}

    flipped = "".join("1" if slot == "0" else "0" for slot in slot_map)
    await _set(database, session_id, booked=booked, slot_map=flipped)  # a slot given back without its counter
    found = await seats(database, [session_id])
    assert (found.miscounted, found.mismatched) == (1, {session_id: ("slot_map",)})


async def test_seats_counts_the_bookings_beyond_a_sessions_capacity(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, settings: Any
) -> None:
    session_id = await _booked_session(app, client, database, clock, settings, bookings=3)
    # Three active bookings in a one-slot session whose counters say one (the schema refuses more than capacity).
    await _set(database, session_id, capacity=1, slot_map="1", booked=1, booked_online_12320=1, open_booked=1)
    found = await seats(database)
    assert (found.active, found.oversold) == (3, 2)
    assert found.mismatched == {session_id: ("booked", "booked_online_12320", "open_booked")}


async def test_seats_refuses_a_session_that_does_not_exist(database: Database) -> None:
    with pytest.raises(LookupError, match="999999"):  # never checked as if it were clean
        await seats(database, [999_999])


async def test_recount_names_the_unit_form_and_day_whose_counter_differs(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock
) -> None:
    org = await add_organization(database, clock, "H0001", name="南京鼓楼医院")
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id))
    at = clock.now() - timedelta(hours=1)
    records = [make_record("outpatient_visit", org.code, f"v{n}", at) for n in range(3)]
    response = await client.post("/api/collection/forms/outpatient_visit/records", json=records, headers=headers)
    assert response.status_code == 200, response.text
    clean = await recount(database)
    assert (clean.records, clean.counted, clean.ok) == (3, 3, True)

    async with database.transaction() as tx:  # a counter moved without its records
        await tx.execute(update(DailyCount).where(DailyCount.organization_id == org.id)
                         .values(accepted=DailyCount.accepted + 2))
    broken = await recount(database)
    assert not broken.ok
    assert [(unit, form, stored, counted) for unit, form, _, stored, counted in broken.mismatched] == [
        (org.id, "outpatient_visit", 3, 5)]

    async with database.transaction() as tx:  # records stored without their counter
        await tx.execute(delete(DailyCount).where(DailyCount.organization_id == org.id))
    assert [(stored, counted) for *_, stored, counted in (await recount(database)).mismatched] == [(3, 0)]
