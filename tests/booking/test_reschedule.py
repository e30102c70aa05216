"""Reschedule (改约): one step, all or nothing, idempotent, and the freed slot goes to the waitlist in order."""

from __future__ import annotations

from datetime import time

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Booking, WaitlistEntry
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, count, publish, resident_principal, row_counts
from tests.factories.family import for_member, linked_minor
from tests.factories.security import headers_for


async def _move(client: httpx.AsyncClient, app: FastAPI, resident_id: int, booking_id: int, session_id: int,
                key: str = "move-1") -> httpx.Response:
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": key}
    return await client.post(f"/api/booking/bookings/{booking_id}/reschedule", headers=headers,
                             json={"session_id": session_id})


async def _booked_with_waitlist(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                                settings: Settings, clock: SimulatedClock) -> tuple[int, int, int, list[int]]:
    """A full one-slot session with two residents waiting: (holder, booking id, session id, waiting ids)."""
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiting = [(await add_resident(database, settings, clock.now(), seq))[0] for seq in (2, 3)]
    session = await publish(client, app, world, capacity=1)
    booked = await book(client, app, resident_principal(holder_id), session["id"])
    assert booked.status_code == 201, booked.text
    for resident_id in waiting:
        joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                   headers=await headers_for(app, resident_principal(resident_id)))
        assert joined.status_code == 201, joined.text
    return holder_id, booked.json()["id"], session["id"], waiting


async def test_the_freed_slot_is_offered_to_the_first_waiting(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                              database: Database, settings: Settings,
                                                              clock: SimulatedClock) -> None:
    holder_id, booking_id, _, (first_id, second_id) = await _booked_with_waitlist(
        client, app, world, database, settings, clock)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    moved = await _move(client, app, holder_id, booking_id, later["id"])
    assert moved.status_code == 201, moved.text
    async with database.transaction() as tx:
        entries = {e.resident_id: e for e in (await tx.execute(select(WaitlistEntry))).scalars()}
        offer = (await tx.execute(select(Booking).where(Booking.resident_id == first_id))).scalar_one()
    assert (entries[first_id].status, entries[first_id].offered_booking_id) == ("offered", offer.id)
    assert offer.status == "held"
    assert entries[second_id].status == "waiting"
    second_view = await client.post("/api/booking/waitlist", json={"session_id": offer.session_id},
                                    headers=await headers_for(app, resident_principal(second_id)))
    assert second_view.json()["position"] == 1


async def test_a_refused_reschedule_keeps_the_old_booking(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                          database: Database, settings: Settings,
                                                          clock: SimulatedClock) -> None:
    holder_id, booking_id, _, _ = await _booked_with_waitlist(client, app, world, database, settings, clock)
    full = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=1)
    other_id, _ = await add_resident(database, settings, clock.now(), 4)
    assert (await book(client, app, resident_principal(other_id), full["id"])).status_code == 201
    before = await row_counts(database)
    refused = await _move(client, app, holder_id, booking_id, full["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    assert await row_counts(database) == before
    assert await count(database, Booking, Booking.id == booking_id, Booking.status == "booked") == 1
    assert await count(database, WaitlistEntry, WaitlistEntry.status == "waiting") == 2


async def test_a_retried_reschedule_moves_once(client: httpx.AsyncClient, app: FastAPI, world: World,
                                               database: Database, settings: Settings, clock: SimulatedClock) -> None:
    holder_id, booking_id, _, _ = await _booked_with_waitlist(client, app, world, database, settings, clock)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    moved = await _move(client, app, holder_id, booking_id, later["id"])
    retried = await _move(client, app, holder_id, booking_id, later["id"])
    assert (retried.status_code, retried.json()) == (201, moved.json())
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert await count(database, Booking, Booking.session_id == later["id"]) == 1
    assert await count(database, Booking, Booking.status == "held") == 1  # one offer to the waitlist, not two
    reused = await _move(client, app, holder_id, booking_id, booking_id + 100)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")


async def test_the_manager_reschedules_the_members_booking(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                           database: Database, settings: Settings,
                                                           clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    first = await publish(client, app, world)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": first["id"]})
    moved = await for_member(client, app, manager_id, link_id, f"bookings/{booked.json()['id']}/reschedule",
                             {"session_id": later["id"]})
    assert moved.status_code == 201, moved.text
    async with database.transaction() as tx:
        row = (await tx.execute(select(Booking).where(Booking.id == moved.json()["id"]))).scalar_one()
    assert (row.resident_id, row.session_id, row.created_by) == (member_id, later["id"],
                                                                 f"resident-account:{manager_id}")
