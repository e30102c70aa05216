"""Holds (at most 15 minutes, released by the sweeper) and the waitlist that inherits freed slots."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from cityhealth.booking.lifecycle import sweep_holds
from cityhealth.booking.models import Booking, MonthlyStat, Notification, WaitlistEntry
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, count, online_app, publish, resident_principal
from tests.factories.security import headers_for


async def _hold(client: httpx.AsyncClient, app: FastAPI, principal: object, session_id: int,
                id_number: str | None = None) -> httpx.Response:
    payload: dict[str, object] = {"session_id": session_id}
    if id_number:
        payload["id_number"] = id_number
    headers = await headers_for(app, principal) | {"Idempotency-Key": uuid.uuid4().hex}  # type: ignore[arg-type]
    return await client.post("/api/booking/holds", json=payload, headers=headers)


async def _confirm(client: httpx.AsyncClient, app: FastAPI, principal: object, hold_id: int) -> httpx.Response:
    headers = await headers_for(app, principal) | {"Idempotency-Key": uuid.uuid4().hex}  # type: ignore[arg-type]
    return await client.post("/api/booking/bookings", json={"hold_id": hold_id}, headers=headers)


async def test_hold_then_confirm_books_and_counts_once(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                       database: Database, settings: Settings,
                                                       clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    held = await _hold(client, app, resident_principal(resident_id), session["id"])
    assert held.status_code == 201, held.text
    assert held.json()["status"] == "held"
    assert held.json()["hold_expires_at"] is not None
    assert await count(database, MonthlyStat) == 0
    clock.advance(timedelta(minutes=14))
    confirmed = await _confirm(client, app, resident_principal(resident_id), held.json()["id"])
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["status"] == "booked"
    assert await count(database, MonthlyStat) == 1


async def test_expired_hold_is_released_by_the_sweeper(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                       database: Database, settings: Settings,
                                                       clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, capacity=1)
    held = await _hold(client, app, resident_principal(resident_id), session["id"])
    assert (await sweep_holds(database, clock)).expired_holds == 0
    clock.advance(timedelta(minutes=15))
    late = await _confirm(client, app, resident_principal(resident_id), held.json()["id"])
    assert late.status_code == 409
    assert late.json()["code"] == "hold_expired"
    result = await sweep_holds(database, clock)
    assert result.expired_holds == 1
    assert await count(database, Booking, Booking.status == "expired") == 1
    other_id, _ = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, resident_principal(other_id), session["id"])).status_code == 201


async def test_waitlist_is_only_for_a_full_session(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                   database: Database, settings: Settings,
                                                   clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    response = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                 headers=await headers_for(app, resident_principal(resident_id)))
    assert response.status_code == 409
    assert response.json()["code"] == "session_not_full"
    assert await count(database, WaitlistEntry) == 0


async def test_freed_slot_goes_on_hold_for_the_first_waiting(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                             database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    first_id, _ = await add_resident(database, settings, clock.now(), 2)
    second_id, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    booked = await book(client, app, resident_principal(holder_id), session["id"])
    for waiting in (first_id, second_id):
        joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                                   headers=await headers_for(app, resident_principal(waiting)))
        assert joined.status_code == 201, joined.text
    assert joined.json()["position"] == 2
    cancelled = await client.post(f"/api/booking/bookings/{booked.json()['id']}/cancel",
                                  headers=await headers_for(app, resident_principal(holder_id)))
    assert cancelled.status_code == 200, cancelled.text
    async with database.transaction() as tx:
        from sqlalchemy import select

        offer = (await tx.execute(select(Booking).where(Booking.resident_id == first_id))).scalar_one()
        entry = (await tx.execute(select(WaitlistEntry).where(WaitlistEntry.resident_id == first_id))).scalar_one()
    assert offer.status == "held"
    assert offer.hold_expires_at == clock.now() + timedelta(minutes=15)
    assert (entry.status, entry.offered_booking_id) == ("offered", offer.id)
    assert await count(database, Notification, Notification.resident_id == first_id,
                       Notification.kind == "waitlist_offer") == 1
    confirmed = await _confirm(client, app, resident_principal(first_id), offer.id)
    assert confirmed.status_code == 201, confirmed.text
    assert await count(database, WaitlistEntry, WaitlistEntry.status == "booked") == 1


async def test_unconfirmed_offer_passes_to_the_next_waiting(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                            database: Database, settings: Settings,
                                                            clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    first_id, _ = await add_resident(database, settings, clock.now(), 2)
    second_id, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    booked = await book(client, app, resident_principal(holder_id), session["id"])
    for waiting in (first_id, second_id):
        await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                          headers=await headers_for(app, resident_principal(waiting)))
    await client.post(f"/api/booking/bookings/{booked.json()['id']}/cancel",
                      headers=await headers_for(app, resident_principal(holder_id)))
    clock.advance(timedelta(minutes=16))
    result = await sweep_holds(database, clock)
    assert (result.expired_holds, result.offers_made) == (1, 1)
    assert await count(database, Booking, Booking.resident_id == second_id, Booking.status == "held") == 1
    assert await count(database, WaitlistEntry, WaitlistEntry.status == "expired") == 1


async def test_app_books_through_a_hold_for_a_resident(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                       database: Database, settings: Settings,
                                                       clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    held = await _hold(client, app, online_app(world), session["id"], id_number)
    assert held.status_code == 201, held.text
    confirmed = await _confirm(client, app, online_app(world), held.json()["id"])
    assert confirmed.json()["channel"] == "online_12320"


async def test_server_job_loop_releases_expired_holds(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                      database: Database, settings: Settings,
                                                      clock: SimulatedClock) -> None:
    import asyncio

    from cityhealth import queue
    from cityhealth.booking import jobs

    assert jobs.HOLD_SWEEP_EVERY_S == 30  # registered with the queue as periodic work
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, capacity=1)
    await _hold(client, app, resident_principal(resident_id), session["id"])
    clock.advance(timedelta(minutes=20))
    runner = queue.LocalRunner(queue.Runtime(settings, database, clock), run_periodic=True)
    await runner.start()
    for _ in range(200):
        if await count(database, Booking, Booking.status == "expired") == 1:
            break
        await asyncio.sleep(0.05)
    await runner.close()
    assert await count(database, Booking, Booking.status == "expired") == 1


async def test_a_slot_freed_after_tomorrows_cutoff_is_not_offered(client: httpx.AsyncClient, app: FastAPI,
                                                                  world: World, database: Database,
                                                                  settings: Settings, clock: SimulatedClock) -> None:
    from datetime import date, time

    from cityhealth.booking.release import at_business_time

    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiting_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    booked = await book(client, app, resident_principal(holder_id), session["id"])
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(waiting_id)))
    assert joined.status_code == 201, joined.text
    # The day before: cancelling is still allowed (until 16:00), booking for tomorrow closed at 12:00.
    the_day_before = date.fromisoformat(session["service_date"]) - timedelta(days=1)
    clock.advance(at_business_time(the_day_before, time(13, 0)) - clock.now())
    cancelled = await client.post(f"/api/booking/bookings/{booked.json()['id']}/cancel",
                                  headers=await headers_for(app, resident_principal(holder_id)))
    assert cancelled.status_code == 200, cancelled.text
    # An offer is a hold, which is a booking: the one rule refuses it as it would refuse the resident's own.
    assert await count(database, Booking, Booking.resident_id == waiting_id) == 0
    assert await count(database, WaitlistEntry, WaitlistEntry.status == "waiting") == 1


async def test_a_channel_whose_quota_is_used_up_may_join_the_waitlist(client: httpx.AsyncClient, app: FastAPI,
                                                                      world: World, database: Database,
                                                                      settings: Settings,
                                                                      clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiting_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=3, quotas={"online_12320": 1})
    assert (await book(client, app, resident_principal(holder_id), session["id"])).status_code == 201
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(waiting_id)))
    # The session has free slots, but none for this channel: for the resident it is full.
    assert joined.status_code == 201, joined.text
