"""Clinic suspension (停诊): bookings cancelled, one message per patient in the outbox, a call-back list."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from cityhealth.booking.models import Booking, BookingSession, Callback, Notification
from cityhealth.booking.notifications import FileSmsSink, dispatch
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import (
    World,
    add_resident,
    book,
    count,
    online_app,
    publish,
    resident_principal,
    scheduler,
)
from tests.factories.security import headers_for

SUSPENDED = "session_suspended"


async def _suspended_session(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                             settings: Settings, clock: SimulatedClock) -> tuple[dict[str, object], httpx.Response]:
    session = await publish(client, app, world, capacity=5)
    first_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, second_number = await add_resident(database, settings, clock.now(), 2, phone=None)
    assert (await book(client, app, resident_principal(first_id), session["id"])).status_code == 201
    assert (await book(client, app, online_app(world), session["id"], second_number)).status_code == 201
    response = await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "专家临时出诊任务"},
                                 headers=await headers_for(app, scheduler(world)))
    return session, response


async def test_suspension_cancels_every_booking_and_tells_each_patient(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    session, response = await _suspended_session(client, app, world, database, settings, clock)
    assert response.status_code == 200, response.text
    assert response.json() == {"session_id": session["id"], "status": "suspended", "cancelled_bookings": 2,
                               "notifications_queued": 2, "callbacks_created": 2}
    assert await count(database, Booking, Booking.status == "cancelled", Booking.end_reason == "session_suspended") == 2
    assert await count(database, Notification, Notification.kind == "session_suspended") == 2
    assert await count(database, Callback, Callback.status == "open") == 2
    async with database.transaction() as tx:
        row = await tx.get(BookingSession, session["id"])
        assert row is not None
        assert (row.booked, row.slot_map) == (0, "00000")


async def test_suspending_again_changes_nothing(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                database: Database, settings: Settings,
                                                clock: SimulatedClock) -> None:
    session, first = await _suspended_session(client, app, world, database, settings, clock)
    again = await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "重复提交"},
                              headers=await headers_for(app, scheduler(world)))
    assert again.json() == first.json()
    assert await count(database, Notification, Notification.kind == "session_suspended") == 2


async def test_other_hospital_cannot_suspend_the_session(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                         database: Database, settings: Settings,
                                                         clock: SimulatedClock) -> None:
    session = await publish(client, app, world)
    response = await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "误操作测试"},
                                 headers=await headers_for(app, scheduler(world, world.other_hospital_id)))
    assert response.status_code == 404
    assert await count(database, BookingSession, BookingSession.status == "suspended") == 0


async def test_dispatcher_sends_the_outbox_through_the_gateway(client: httpx.AsyncClient, app: FastAPI,
                                                              world: World, database: Database, settings: Settings,
                                                              clock: SimulatedClock, tmp_path: Path) -> None:
    sink = install(app, FileSmsSink(tmp_path / "outbox" / "sms.ndjson"))

    async def settled() -> bool:
        return await count(database, Notification, Notification.kind == SUSPENDED,
                           Notification.status == "pending") == 0

    await _suspended_session(client, app, world, database, settings, clock)
    assert await until(settled)  # sent by the task the suspension deferred, with no one running the dispatcher
    assert await count(database, Notification, Notification.kind == SUSPENDED, Notification.status == "sent") == 1
    assert await count(database, Notification, Notification.kind == SUSPENDED, Notification.status == "no_phone") == 1
    def suspended_lines() -> list[dict[str, str]]:
        lines = [json.loads(line) for line in sink.path.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if "停诊" in line["message"]]

    assert len(suspended_lines()) == 1
    assert suspended_lines()[0]["to"] == "138****5678"  # never the whole number, even in the development sink
    await dispatch(database, clock, cipher_for(settings), sink)
    assert len(suspended_lines()) == 1


async def test_failed_sends_stay_in_the_outbox(client: httpx.AsyncClient, app: FastAPI, world: World,
                                               database: Database, settings: Settings,
                                               clock: SimulatedClock) -> None:
    install(app, Recorder(down=True))

    async def tried() -> bool:
        # tried and still pending: the sending task retries a refused message, so it may be tried more than once
        return await count(database, Notification, Notification.kind == SUSPENDED, Notification.status == "pending",
                           Notification.attempts >= 1) == 1

    await _suspended_session(client, app, world, database, settings, clock)
    assert await until(tried)
    assert (await dispatch(database, clock, cipher_for(settings), Recorder(down=True))).failed >= 1
    assert await count(database, Notification, Notification.kind == SUSPENDED, Notification.status == "pending",
                       Notification.attempts >= 2) == 1
