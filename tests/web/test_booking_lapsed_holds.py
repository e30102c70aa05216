"""The resident booking pages answer with the one booking rule as the feed does: a hold lapsed by the clock,
not yet swept, leaves its slot bookable there too."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from tests.factories.booking import World, resident_principal
from tests.factories.security import headers_for
from tests.web.conftest import registered_resident
from tests.web.test_booking_pages import session_with_doctor

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database


async def test_slot_page_offers_the_slot_of_a_lapsed_hold(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    session = await session_with_doctor(client, app, world, capacity=1)
    other = await registered_resident(client, database, settings, clock, 2)
    held = await client.post("/api/booking/holds", json={"session_id": session["id"]},
                             headers=await headers_for(app, resident_principal(other.resident_id))
                             | {"Idempotency-Key": uuid.uuid4().hex})
    assert held.status_code == 201, held.text
    assert "号源已约满" in (await client.get(f"/booking/slots/{session['id']}")).text
    clock.advance(timedelta(minutes=15, seconds=1))  # lapsed; the sweeper has not run
    response = await client.get(f"/booking/slots/{session['id']}")
    assert "号源已约满" not in response.text
    assert "可以预约，网上还剩 1 个号" in response.text
