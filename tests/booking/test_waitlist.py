"""The waitlist as residents meet it: offers sent on their own and never once lapsed, joining refused when an
offer could never be made, a resident's own entries listed and left, waiting entries that expire."""

from __future__ import annotations

import re
import uuid
from datetime import date, time, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.booking.models import Booking, Notification, WaitlistEntry
from cityhealth.booking.notifications import dispatch
from cityhealth.booking.release import at_business_time
from cityhealth.booking.waitlist import expire_waiting
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import World, add_resident, book, count, publish, resident_principal
from tests.factories.security import headers_for


async def _join(client: httpx.AsyncClient, app: FastAPI, resident_id: int, session_id: int) -> httpx.Response:
    return await client.post("/api/booking/waitlist", json={"session_id": session_id},
                             headers=await headers_for(app, resident_principal(resident_id)))


async def _offer_made(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                      settings: Settings, clock: SimulatedClock) -> tuple[int, int]:
    """A full session, one resident waiting, the booking cancelled: (waiting resident, offered hold)."""
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiting_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    booked = await book(client, app, resident_principal(holder_id), session["id"])
    assert (await _join(client, app, waiting_id, session["id"])).status_code == 201
    cancelled = await client.post(f"/api/booking/bookings/{booked.json()['id']}/cancel",
                                  headers=await headers_for(app, resident_principal(holder_id)))
    assert cancelled.status_code == 200, cancelled.text
    async with database.transaction() as tx:
        from sqlalchemy import select

        hold_id = (await tx.execute(select(Booking.id).where(Booking.resident_id == waiting_id))).scalar_one()
    return waiting_id, hold_id


async def test_an_offer_is_sent_without_anyone_running_the_dispatcher(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, Recorder())

    async def sent() -> bool:
        return await count(database, Notification, Notification.kind == "waitlist_offer",
                           Notification.status == "sent") == 1

    _, hold_id = await _offer_made(client, app, world, database, settings, clock)
    assert await until(sent)
    assert [m for _, m in recorder.sent if "候补" in m and str(hold_id) in m]


async def test_the_offer_states_its_deadline_and_how_to_confirm(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    install(app, Recorder(down=True))
    await _offer_made(client, app, world, database, settings, clock)
    async with database.transaction() as tx:
        from sqlalchemy import select

        message = (await tx.execute(select(Notification.message)
                                    .where(Notification.kind == "waitlist_offer"))).scalar_one()
    deadline = (clock.now() + timedelta(minutes=15)).astimezone(at_business_time(date(2022, 1, 1), time()).tzinfo)
    assert f"北京时间{deadline:%Y年%m月%d日 %H:%M}前" in message
    assert "确认预约" in message
    assert not re.search(r"\d{17}[\dXx]", message)  # never an ID number


async def test_a_lapsed_offer_is_never_sent(client: httpx.AsyncClient, app: FastAPI, world: World,
                                            database: Database, settings: Settings, clock: SimulatedClock) -> None:
    down = install(app, Recorder(down=True))  # the first try fails; the offer stays in the outbox

    async def tried() -> bool:  # every sending run retries it, so it may have been tried more than once
        return await count(database, Notification, Notification.kind == "waitlist_offer",
                           Notification.attempts >= 1, Notification.status == "pending") == 1

    await _offer_made(client, app, world, database, settings, clock)
    assert await until(tried)
    assert down.calls >= 1
    clock.advance(timedelta(minutes=15, seconds=1))
    later = Recorder()
    result = await dispatch(database, clock, cipher_for(settings), later)
    assert result.lapsed == 1
    assert [m for _, m in later.sent if "候补" in m] == []
    assert await count(database, Notification, Notification.kind == "waitlist_offer",
                       Notification.status == "lapsed") == 1


async def test_joining_is_refused_when_already_booked_in_the_department_that_day(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    other_id, _ = await add_resident(database, settings, clock.now(), 2)
    morning = await publish(client, app, world, capacity=2)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0), capacity=1)
    assert (await book(client, app, resident_principal(resident_id), morning["id"])).status_code == 201
    assert (await book(client, app, resident_principal(other_id), afternoon["id"])).status_code == 201
    refused = await _join(client, app, resident_id, afternoon["id"])
    assert refused.status_code == 409, refused.text
    assert (refused.json()["code"], refused.json()["rule"]) == ("same_department_day",
                                                                "booking.one_per_department_day")
    assert "waitlist" in refused.json()["detail"]
    assert await count(database, WaitlistEntry) == 0


async def test_joining_is_refused_when_already_holding_that_session(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, capacity=1)
    held = await client.post("/api/booking/holds", json={"session_id": session["id"]},
                              headers=await headers_for(app, resident_principal(resident_id))
                              | {"Idempotency-Key": uuid.uuid4().hex})
    assert held.status_code == 201, held.text
    refused = await _join(client, app, resident_id, session["id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["rule"] == "booking.one_per_department_day"
    assert await count(database, WaitlistEntry) == 0


async def test_a_resident_lists_only_their_own_waitlist_entries(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    mine_id, _ = await add_resident(database, settings, clock.now(), 2)
    other_id, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    await book(client, app, resident_principal(holder_id), session["id"])
    mine = (await _join(client, app, mine_id, session["id"])).json()
    await _join(client, app, other_id, session["id"])
    listed = await client.get("/api/booking/waitlist", headers=await headers_for(app, resident_principal(mine_id)))
    assert listed.status_code == 200, listed.text
    assert [(e["id"], e["position"]) for e in listed.json()] == [(mine["id"], 1)]


async def test_a_resident_leaves_the_waitlist_and_the_next_moves_up(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    first_id, _ = await add_resident(database, settings, clock.now(), 2)
    second_id, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world, capacity=1)
    await book(client, app, resident_principal(holder_id), session["id"])
    first = (await _join(client, app, first_id, session["id"])).json()
    second = (await _join(client, app, second_id, session["id"])).json()
    assert second["position"] == 2
    not_theirs = await client.post(f"/api/booking/waitlist/{first['id']}/leave",
                                   headers=await headers_for(app, resident_principal(second_id)))
    assert not_theirs.status_code == 404
    for _ in range(2):  # leaving again returns the same entry
        left = await client.post(f"/api/booking/waitlist/{first['id']}/leave",
                                 headers=await headers_for(app, resident_principal(first_id)))
        assert left.status_code == 200, left.text
        assert left.json()["status"] == "cancelled"
    listed = await client.get("/api/booking/waitlist", headers=await headers_for(app, resident_principal(second_id)))
    assert listed.json()[0]["position"] == 1


async def test_waiting_entries_expire_once_the_session_can_no_longer_be_booked(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiting_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    await book(client, app, resident_principal(holder_id), session["id"])
    assert (await _join(client, app, waiting_id, session["id"])).status_code == 201
    the_day_before = date.fromisoformat(session["service_date"]) - timedelta(days=1)
    clock.advance(at_business_time(the_day_before, time(11, 59)) - clock.now())
    assert await expire_waiting(database, clock) == 0
    clock.advance(timedelta(minutes=1))  # the hospital's next-day cut-off (12:00): booking for tomorrow closed
    assert await expire_waiting(database, clock) == 1
    assert await count(database, WaitlistEntry, WaitlistEntry.status == "expired") == 1
