"""A resident's hold lapsed by the clock holds nothing on their day: not the department's daily cap of a booking
decided by the group commit, and not a waitlist offer of the very session it was on."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Booking, WaitlistEntry
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, publish, resident_principal
from tests.factories.security import headers_for

LAPSED = timedelta(minutes=15, seconds=1)


async def _hold(client: httpx.AsyncClient, app: FastAPI, resident_id: int, session_id: int) -> int:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": uuid.uuid4().hex}
    response = await client.post("/api/booking/holds", json={"session_id": session_id}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _status(database: Database, booking_id: int) -> str:
    async with database.transaction() as tx:
        return str((await tx.execute(select(Booking.status).where(Booking.id == booking_id))).scalar_one())


async def test_a_lapsed_hold_in_another_session_of_the_department_does_not_count_against_the_daily_cap(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident, _ = await add_resident(database, settings, clock.now(), 1)
    morning = await publish(client, app, world, capacity=2)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=2)
    held = await _hold(client, app, resident, morning["id"])
    clock.advance(LAPSED)  # not swept: the hold is still 'held' in the database
    booked = await book(client, app, resident_principal(resident), afternoon["id"])
    assert booked.status_code == 201, booked.text  # not same_department_day
    assert await _status(database, held) == "expired"  # tidied: it stood in the way of the new booking
    async with database.transaction() as tx:
        active = dict((await tx.execute(select(Booking.session_id, Booking.slot_no).where(
            Booking.status.in_(("held", "booked"))))).all())
    assert active == {afternoon["id"]: 1}
    again = await book(client, app, resident_principal(resident), morning["id"])  # its slot was given back
    assert (again.status_code, again.json()["code"]) == (409, "same_department_day")


async def test_a_waitlist_offer_reaches_a_resident_whose_hold_of_that_session_lapsed(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    waiter, _ = await add_resident(database, settings, clock.now(), 1)
    other, _ = await add_resident(database, settings, clock.now(), 2)
    first, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=2)
    lapsed = await _hold(client, app, waiter, session["id"])
    taken = await book(client, app, resident_principal(other), session["id"])
    assert taken.status_code == 201, taken.text
    for resident_id in (first, waiter):  # someone waits first: the lapsed hold's slot is the waitlist's
        joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                   headers=await headers_for(app, resident_principal(resident_id)))
        assert joined.status_code == 201, joined.text
        clock.advance(LAPSED)
    first_entry = (await client.get("/api/booking/waitlist",
                                    headers=await headers_for(app, resident_principal(first)))).json()[0]
    left = await client.post(f"/api/booking/waitlist/{first_entry['id']}/leave",
                             headers=await headers_for(app, resident_principal(first)))
    assert left.status_code == 200, left.text
    cancelled = await client.post(f"/api/booking/bookings/{taken.json()['id']}/cancel", json={},
                                  headers=await headers_for(app, resident_principal(other)))
    assert cancelled.status_code == 200, cancelled.text
    async with database.transaction() as tx:
        entry = (await tx.execute(select(WaitlistEntry).where(WaitlistEntry.resident_id == waiter))).scalar_one()
        offered = await tx.get(Booking, entry.offered_booking_id) if entry.offered_booking_id else None
    assert entry.status == "offered"  # not skipped as "already holding that session"
    assert offered is not None
    assert (offered.status, offered.session_id) == ("held", session["id"])
    assert await _status(database, lapsed) == "expired"


async def test_a_booking_that_expires_its_residents_lapsed_hold_is_not_undone_by_that_sessions_waitlist(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident, _ = await add_resident(database, settings, clock.now(), 1)
    first, _ = await add_resident(database, settings, clock.now(), 2)
    morning = await publish(client, app, world, capacity=1)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=2)
    lapsed = await _hold(client, app, resident, morning["id"])
    for resident_id in (first, resident):  # the resident ends up first in the morning's waitlist
        joined = await client.post("/api/booking/waitlist", json={"session_id": morning["id"]},
                                   headers=await headers_for(app, resident_principal(resident_id)))
        assert joined.status_code == 201, joined.text
        clock.advance(LAPSED)
    first_entry = (await client.get("/api/booking/waitlist",
                                    headers=await headers_for(app, resident_principal(first)))).json()[0]
    assert (await client.post(f"/api/booking/waitlist/{first_entry['id']}/leave",
                              headers=await headers_for(app, resident_principal(first)))).status_code == 200
    booked = await book(client, app, resident_principal(resident), afternoon["id"])
    assert booked.status_code == 201, booked.text  # the morning's freed slot is offered after, not before
    assert await _status(database, lapsed) == "expired"
    async with database.transaction() as tx:
        entry = (await tx.execute(select(WaitlistEntry).where(WaitlistEntry.resident_id == resident))).scalar_one()
        held_mornings = (await tx.execute(select(Booking.id).where(
            Booking.session_id == morning["id"], Booking.status == "held"))).all()
    assert entry.status == "skipped"  # booked in the department that day now: an offer would be refused
    assert held_mornings == []
