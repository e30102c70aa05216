"""A reschedule sends one message: the new time, and that the old slot is released (issue #14, gaps)."""

from __future__ import annotations

import uuid
from datetime import time

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Notification
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, publish, resident_principal, scheduler
from tests.factories.security import headers_for


async def _moved(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
                 clock: SimulatedClock) -> tuple[httpx.Response, httpx.Response]:
    """A booking moved to the afternoon, the move's request sent twice: (booked, moved)."""
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    morning = await publish(client, app, world)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    booked = await book(client, app, resident_principal(resident_id), morning["id"])
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": uuid.uuid4().hex}
    for _ in range(2):
        moved = await client.post(f"/api/booking/bookings/{booked.json()['id']}/reschedule", headers=headers,
                                  json={"session_id": afternoon["id"]})
        assert moved.status_code == 201, moved.text
    return booked, moved


async def _messages(database: Database) -> list[tuple[int | None, str]]:
    async with database.transaction() as tx:
        return [(r.booking_id, r.message) for r in (await tx.execute(
            select(Notification).where(Notification.kind == "booking_rescheduled"))).scalars()]


async def test_a_reschedule_sends_one_message_with_the_new_time_and_the_old_released(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, moved = await _moved(client, app, world, database, settings, clock)
    [(booking_id, message)] = await _messages(database)
    assert booking_id == moved.json()["id"]
    assert "改约成功" in message
    assert "14:00" in message  # the new slot's time
    assert "08:00" in message  # and the old one's
    assert "号源已释放" in message


async def test_a_hospital_that_turned_confirmations_off_sends_no_reschedule_message(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    put = await client.put(f"/api/booking/message-settings/{world.hospital_id}", json={"confirmation_enabled": False},
                           headers=await headers_for(app, scheduler(world)))
    assert put.status_code == 200, put.text
    await _moved(client, app, world, database, settings, clock)
    assert await _messages(database) == []
