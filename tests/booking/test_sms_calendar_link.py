"""An SMS cannot carry an .ics file: a booking's confirmation and reminder carry a short link to it, which opens
without a sign-in, names no one, and cannot be made for another booking."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import World, add_resident, book, publish, resident_principal

LINK = re.compile(r"https?://\S+")


async def test_a_confirmation_sms_links_to_the_bookings_calendar_file(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, Recorder())
    resident_id, number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = (await book(client, app, resident_principal(resident_id), session["id"])).json()

    async def sent() -> bool:
        return any("预约成功" in message for _, message in recorder.sent)

    assert await until(sent, seconds=5.0)
    [(phone, message)] = recorder.sent
    [link] = LINK.findall(message)
    path = urlsplit(link).path
    for personal in (number, phone, "居民"):  # no ID number, phone or name in the URL
        assert personal not in link
    assert len(link) <= len(settings.public_base_url) + 40  # short enough for an SMS
    opened = await client.get(path)  # no token: the resident taps it on their phone
    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"].startswith("text/calendar")
    assert f"UID:booking-{booked['id']}@" in opened.text
    assert number not in opened.text
    forged = path.replace(f"/c/{booked['id']}-", f"/c/{booked['id'] + 1}-")
    assert (await client.get(forged)).status_code == 404
    clock.advance(timedelta(days=5))  # the appointment is long over: the link no longer opens
    assert (await client.get(path)).status_code == 404
