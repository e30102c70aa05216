"""A hold's expiry is decided by the clock at the moment of an attempt, not by the sweeper (issue #14, 4)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.lifecycle import sweep_holds
from cityhealth.booking.models import Booking, BookingSession
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, publish, resident_principal
from tests.factories.security import headers_for


async def _hold(client: httpx.AsyncClient, app: FastAPI, resident_id: int, session_id: int) -> dict[str, object]:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": uuid.uuid4().hex}
    response = await client.post("/api/booking/holds", json={"session_id": session_id}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def _status_and_booked(database: Database, hold_id: object, session_id: int) -> tuple[str, int]:
    async with database.transaction() as tx:
        status = (await tx.execute(select(Booking.status).where(Booking.id == hold_id))).scalar_one()
        booked = (await tx.execute(select(BookingSession.booked).where(BookingSession.id == session_id))).scalar_one()
    return status, booked


async def test_a_lapsed_hold_frees_its_slot_before_the_sweep(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                             database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    other, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    held = await _hold(client, app, holder, session["id"])
    clock.advance(timedelta(minutes=15, seconds=1))
    response = await book(client, app, resident_principal(other), session["id"])
    assert response.status_code == 201, response.text
    assert response.json()["slot_no"] == 1
    assert await _status_and_booked(database, held["id"], session["id"]) == ("expired", 1)
    assert (await sweep_holds(database, clock)).expired_holds == 0  # the attempt tidied it already


async def test_a_hold_not_yet_lapsed_still_keeps_its_slot(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                          database: Database, settings: Settings,
                                                          clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    other, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    held = await _hold(client, app, holder, session["id"])
    clock.advance(timedelta(minutes=14, seconds=59))
    response = await book(client, app, resident_principal(other), session["id"])
    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"
    assert await _status_and_booked(database, held["id"], session["id"]) == ("held", 1)


async def test_a_resident_books_again_after_their_own_hold_lapsed(client: httpx.AsyncClient, app: FastAPI,
                                                                  world: World, database: Database,
                                                                  settings: Settings, clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    other, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=2)
    others = await _hold(client, app, other, session["id"])
    held = await _hold(client, app, holder, session["id"])  # slot 2; slot 1 is free again once cancelled
    cancelled = await client.post(f"/api/booking/bookings/{others['id']}/cancel", json={},
                                  headers=await headers_for(app, resident_principal(other)))
    assert cancelled.status_code == 200, cancelled.text
    clock.advance(timedelta(minutes=15, seconds=1))
    response = await book(client, app, resident_principal(holder), session["id"])
    assert response.status_code == 201, response.text  # not refused as a second booking in the department
    assert response.json()["slot_no"] == 1
    assert await _status_and_booked(database, held["id"], session["id"]) == ("expired", 1)


async def test_a_lapsed_hold_goes_to_the_waitlist_not_to_the_first_attempt(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    waiting, _ = await add_resident(database, settings, clock.now(), 2)
    newcomer, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    held = await _hold(client, app, holder, session["id"])
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(waiting)))
    assert joined.status_code == 201, joined.text
    clock.advance(timedelta(minutes=15, seconds=1))
    response = await book(client, app, resident_principal(newcomer), session["id"])
    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"
    result = await sweep_holds(database, clock)
    assert (result.expired_holds, result.offers_made) == (1, 1)
    async with database.transaction() as tx:
        offered = (await tx.execute(select(Booking.status).where(Booking.resident_id == waiting))).scalar_one()
    assert offered == "held"
    assert await _status_and_booked(database, held["id"], session["id"]) == ("expired", 1)
