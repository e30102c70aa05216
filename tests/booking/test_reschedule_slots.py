"""A reschedule may name the slot (号) of the target session it wants: taken when free for the booking's channel
at that moment, refused with a named rule otherwise; the slot it leaves goes to the waitlist in order."""

from __future__ import annotations

from datetime import time

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Booking, BookingSession, WaitlistEntry
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, count, publish, resident_principal, row_counts
from tests.factories.security import headers_for


async def _move(client: httpx.AsyncClient, app: FastAPI, resident_id: int, booking_id: int, session_id: int,
                slot_no: int, key: str = "move-1") -> httpx.Response:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": key}
    return await client.post(f"/api/booking/bookings/{booking_id}/reschedule", headers=headers,
                             json={"session_id": session_id, "slot_no": slot_no})


async def _booked(client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
                  clock: SimulatedClock, session_id: int, seq: int) -> tuple[int, int]:
    resident_id, _ = await add_resident(database, settings, clock.now(), seq)
    booked = await book(client, app, resident_principal(resident_id), session_id)
    assert booked.status_code == 201, booked.text
    return resident_id, int(booked.json()["id"])


async def _slot_map(database: Database, session_id: int) -> str:
    async with database.transaction() as tx:
        return str((await tx.execute(select(BookingSession.slot_map)
                                     .where(BookingSession.id == session_id))).scalar_one())


async def test_a_reschedule_takes_the_slot_asked_for(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                     database: Database, settings: Settings,
                                                     clock: SimulatedClock) -> None:
    first = await publish(client, app, world)
    resident_id, booking_id = await _booked(client, app, database, settings, clock, first["id"], 1)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=5)
    moved = await _move(client, app, resident_id, booking_id, later["id"], 4)
    assert moved.status_code == 201, moved.text
    assert moved.json()["slot_no"] == 4
    assert await _slot_map(database, later["id"]) == "00010"
    assert await _slot_map(database, first["id"]) == "00000"


async def test_a_move_within_the_session_to_another_slot(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                         database: Database, settings: Settings,
                                                         clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=3)
    resident_id, booking_id = await _booked(client, app, database, settings, clock, session["id"], 1)
    moved = await _move(client, app, resident_id, booking_id, session["id"], 3)
    assert (moved.status_code, moved.json()["slot_no"]) == (201, 3), moved.text
    assert await _slot_map(database, session["id"]) == "001"
    same = await _move(client, app, resident_id, moved.json()["id"], session["id"], 3, key="move-2")
    assert (same.status_code, same.json()["code"], same.json()["rule"]) == (
        422, "same_slot", "booking.reschedule_other_slot")


async def test_a_slot_taken_is_refused_by_its_rule_and_nothing_changes(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    first = await publish(client, app, world)
    resident_id, booking_id = await _booked(client, app, database, settings, clock, first["id"], 1)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=5)
    await _booked(client, app, database, settings, clock, later["id"], 2)  # takes slot 1
    before = await row_counts(database)
    refused = await _move(client, app, resident_id, booking_id, later["id"], 1)
    assert (refused.status_code, refused.json()["code"], refused.json()["rule"], refused.json()["field"]) == (
        409, "slot_not_free", "booking.reschedule_slot_free", "slot_no")
    assert await row_counts(database) == before
    assert await count(database, Booking, Booking.id == booking_id, Booking.status == "booked") == 1
    assert await _slot_map(database, later["id"]) == "10000"
    beyond = await _move(client, app, resident_id, booking_id, later["id"], 6, key="move-2")
    assert (beyond.status_code, beyond.json()["code"], beyond.json()["rule"]) == (
        422, "slot_out_of_range", "booking.reschedule_slot_range")


async def test_a_channel_without_slots_left_is_refused_whatever_slot_it_names(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    first = await publish(client, app, world)
    resident_id, booking_id = await _booked(client, app, database, settings, clock, first["id"], 1)
    # One of the four slots is the residents' online channel's quota: slot 3 is free, but not for that channel.
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=4,
                          quotas={"online_12320": 1})
    await _booked(client, app, database, settings, clock, later["id"], 2)
    refused = await _move(client, app, resident_id, booking_id, later["id"], 3)
    assert (refused.status_code, refused.json()["code"]) == (409, "quota_exhausted"), refused.text


async def test_the_slot_left_goes_to_the_first_waiting(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                       database: Database, settings: Settings,
                                                       clock: SimulatedClock) -> None:
    full = await publish(client, app, world, capacity=1)
    resident_id, booking_id = await _booked(client, app, database, settings, clock, full["id"], 1)
    waiting = [(await add_resident(database, settings, clock.now(), seq))[0] for seq in (2, 3)]
    for waiter in waiting:
        joined = await client.post("/api/booking/waitlist", json={"session_id": full["id"]},
                                   headers=await headers_for(app, resident_principal(waiter)))
        assert joined.status_code == 201, joined.text
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=5)
    moved = await _move(client, app, resident_id, booking_id, later["id"], 2)
    assert (moved.status_code, moved.json()["slot_no"]) == (201, 2), moved.text
    async with database.transaction() as tx:
        entries = {e.resident_id: e.status for e in (await tx.execute(select(WaitlistEntry))).scalars()}
    assert entries == {waiting[0]: "offered", waiting[1]: "waiting"}
