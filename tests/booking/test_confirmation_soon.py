"""A booking decided by the group commit has its confirmation sent by the task deferred with it, within
seconds, with no one running the periodic dispatcher."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import World, add_resident, book, publish, resident_principal


async def test_a_group_committed_booking_is_confirmed_within_seconds(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, Recorder())
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = await book(client, app, resident_principal(resident_id), session["id"])
    assert booked.status_code == 201, booked.text

    async def confirmed() -> bool:
        return any("预约成功" in message for _, message in recorder.sent)

    assert await until(confirmed, seconds=5.0)
