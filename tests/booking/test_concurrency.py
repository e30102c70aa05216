"""Races, checked from the database afterwards: no overbooking, no double slot, no resident over a cap."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import time

import httpx
from fastapi import FastAPI

from cityhealth.booking.models import BookingSession
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, active_bookings, add_resident, online_app, publish
from tests.factories.security import headers_for


async def _race(client: httpx.AsyncClient, headers: dict[str, str],
                attempts: list[tuple[int, str]]) -> list[httpx.Response]:
    async def attempt(session_id: int, id_number: str) -> httpx.Response:
        return await client.post("/api/booking/bookings", json={"session_id": session_id, "id_number": id_number},
                                 headers=headers | {"Idempotency-Key": uuid.uuid4().hex})

    return list(await asyncio.gather(*(attempt(session_id, number) for session_id, number in attempts)))


async def test_fifty_clients_race_for_five_slots(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                 database: Database, settings: Settings,
                                                 clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=5)
    numbers = [(await add_resident(database, settings, clock.now(), seq))[1] for seq in range(25)]
    headers = await headers_for(app, online_app(world))
    # Every resident tries twice at once: the second attempt must lose to the per-department cap.
    responses = await _race(client, headers, [(session["id"], n) for n in numbers * 2])
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 409: 45}
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"sold_out", "same_department_day"}
    booked = await active_bookings(database, session["id"])
    assert len(booked) == 5
    assert sorted(b.slot_no for b in booked) == [1, 2, 3, 4, 5]
    assert len({b.resident_id for b in booked}) == 5
    async with database.transaction() as tx:
        row = await tx.get(BookingSession, session["id"])
        assert row is not None
        assert (row.booked, row.slot_map) == (5, "11111")


async def test_racing_bookings_of_one_resident_respect_the_daily_caps(client: httpx.AsyncClient, app: FastAPI,
                                                                      world: World, database: Database,
                                                                      settings: Settings,
                                                                      clock: SimulatedClock) -> None:
    departments = (world.department_id, world.second_department_id, world.third_department_id)
    sessions = [await publish(client, app, world, capacity=50, department_id=department,
                              start=time(8 + 2 * i, 0), end=time(9 + 2 * i, 0))
                for i, department in enumerate(departments)]
    overlapping = await publish(client, app, world, capacity=50, department_id=world.second_department_id,
                                start=time(8, 30), end=time(9, 30))
    numbers = [(await add_resident(database, settings, clock.now(), seq))[1] for seq in range(12)]
    headers = await headers_for(app, online_app(world))
    attempts = [(s["id"], n) for n in numbers for s in [*sessions, overlapping]]
    responses = await _race(client, headers, attempts)
    assert Counter(r.status_code for r in responses)[500] == 0
    per_resident: dict[int, list[tuple[int, object, object]]] = {}
    for booking in await active_bookings(database):
        per_resident.setdefault(booking.resident_id, []).append(
            (booking.department_id, booking.starts_at, booking.ends_at))
    assert len(per_resident) == 12  # everyone got something
    for bookings in per_resident.values():
        assert len({department for department, _, _ in bookings}) == len(bookings) <= 2
        for i, (_, start, end) in enumerate(bookings):
            for _, other_start, other_end in bookings[i + 1:]:
                assert not (start < other_end and other_start < end)  # type: ignore[operator]
