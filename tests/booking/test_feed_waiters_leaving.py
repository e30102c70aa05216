"""The feed's incremental read sees a lapsed hold's slot come free when the last resident waiting leaves."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Scope
from tests.factories.booking import World, add_resident, publish, resident_principal
from tests.factories.security import headers_for, machine

SLOTS = "/api/booking/smart/slots.ndjson"


async def test_since_lists_a_session_whose_last_waiter_left_after_its_hold_lapsed(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    holder, _ = await add_resident(database, settings, clock.now(), 1)
    waiter, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    held = await client.post("/api/booking/holds", json={"session_id": session["id"]},
                             headers=await headers_for(app, resident_principal(holder))
                             | {"Idempotency-Key": uuid.uuid4().hex})
    assert held.status_code == 201, held.text
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(waiter)))
    assert joined.status_code == 201, joined.text
    clock.advance(timedelta(minutes=20))  # the hold lapsed, unswept: its slot is the waiter's, not free
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))
    assert '"status":"busy"' in (await client.get(SLOTS, headers=feed)).text
    mark = clock.now()
    clock.advance(timedelta(seconds=5))
    left = await client.post(f"/api/booking/waitlist/{joined.json()['id']}/leave",
                             headers=await headers_for(app, resident_principal(waiter)))
    assert left.status_code == 200, left.text
    feed = await headers_for(app, machine(Scope.BOOKING_READ, client_id="smart-reader"))
    full = await client.get(SLOTS, headers=feed)
    assert '"status":"free"' in full.text  # nobody waits: the lapsed hold's slot is anyone's
    changed = await client.get(SLOTS, params={"_since": mark.isoformat()}, headers=feed)
    assert changed.status_code == 200, changed.text
    assert f'"id":"{session["id"]}"' in changed.text
    assert '"status":"free"' in changed.text
