"""Where the channel carries a file (an app's message centre, e-mail), every message about a booking goes with
its calendar file: one .ics attachment per message, no link needed; an SMS gets the text and the link."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.notifications import Attachment
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import World, add_resident, book, publish, resident_principal
from tests.factories.security import headers_for


@dataclass
class AppRecorder:
    """A channel that carries attachments: keeps (message, attachment) per send."""

    carries_attachments: bool = True
    sent: list[tuple[str, Attachment | None]] = field(default_factory=list)

    async def send(self, phone: str, message: str, *, reference: str, attachment: Attachment | None = None) -> None:
        self.sent.append((message, attachment))


def _events(attachment: Attachment) -> list[dict[str, str]]:
    """The file's VEVENTs, their lines unfolded (RFC 5545 §3.1), as field maps."""
    lines = re.sub(r"\r\n[ \t]", "", attachment.content.decode("utf-8")).split("\r\n")
    events: list[dict[str, str]] = []
    depth = 0
    for line in lines:
        if line == "BEGIN:VEVENT":
            events.append({})
        elif line in ("BEGIN:VALARM", "END:VALARM"):
            depth += 1 if line.startswith("BEGIN") else -1
        elif events and depth == 0 and ":" in line and not line.startswith(("BEGIN", "END")):
            name, value = line.split(":", 1)
            events[-1].setdefault(name, value)
    return events


def _utc(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


async def _sent(recorder: AppRecorder, marker: str) -> tuple[str, Attachment | None]:
    async def arrived() -> bool:
        return any(marker in message for message, _ in recorder.sent)

    assert await until(arrived, seconds=5.0)
    [found] = [(message, attachment) for message, attachment in recorder.sent if marker in message]
    return found


async def test_a_confirmation_carries_the_bookings_calendar_file(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, AppRecorder())
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = (await book(client, app, resident_principal(resident_id), session["id"])).json()
    message, attachment = await _sent(recorder, "预约成功")
    assert attachment is not None
    assert "http" not in message  # the file travels with the message: no link to it
    assert (attachment.filename, attachment.media_type) == (f"booking-{booked['id']}.ics",
                                                            "text/calendar; charset=utf-8")
    [event] = _events(attachment)
    assert (event["UID"], event["STATUS"]) == (f"booking-{booked['id']}@cityhealth.test", "CONFIRMED")
    assert event["DTSTART"] == _utc(booked["estimated_at"])

    async def exported() -> list[str]:
        async with database.transaction() as tx:
            return list((await tx.execute(select(AuditEvent.detail).where(
                AuditEvent.action == "export", AuditEvent.resource_id == str(booked["id"])))).scalars())

    async def audited() -> bool:  # the gateway is called inside the dispatch's transaction: wait for its commit
        return bool(await exported())

    assert await until(audited, seconds=5.0)
    assert await exported() == ["calendar attachment of booking_confirmed"]


async def test_a_cancellation_carries_the_event_cancelled_and_an_offer_carries_none(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, AppRecorder())
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    waiter_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world, capacity=1)
    booked = (await book(client, app, resident_principal(resident_id), session["id"])).json()
    joined = await client.post("/api/booking/waitlist", json={"session_id": session["id"]},
                               headers=await headers_for(app, resident_principal(waiter_id)))
    assert joined.status_code == 201, joined.text
    cancelled = await client.post(f"/api/booking/bookings/{booked['id']}/cancel",
                                  headers=await headers_for(app, resident_principal(resident_id)))
    assert cancelled.status_code == 200, cancelled.text
    _, attachment = await _sent(recorder, "取消成功")
    assert attachment is not None
    [event] = _events(attachment)
    assert (event["UID"], event["STATUS"]) == (f"booking-{booked['id']}@cityhealth.test", "CANCELLED")
    _, offered = await _sent(recorder, "候补")
    assert offered is None  # a waitlist offer is about a hold, not an appointment


async def test_a_reschedule_carries_one_file_that_moves_the_appointment(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, AppRecorder())
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    first = await publish(client, app, world)
    booked = (await book(client, app, resident_principal(resident_id), first["id"])).json()
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    moved = await client.post(f"/api/booking/bookings/{booked['id']}/reschedule", json={"session_id": later["id"]},
                              headers=await headers_for(app, resident_principal(resident_id))
                              | {"Idempotency-Key": "move-1"})
    assert moved.status_code == 201, moved.text
    _, attachment = await _sent(recorder, "改约成功")
    assert attachment is not None
    assert attachment.filename == f"booking-{moved.json()['id']}.ics"
    assert [(e["UID"], e["STATUS"]) for e in _events(attachment)] == [
        (f"booking-{booked['id']}@cityhealth.test", "CANCELLED"),
        (f"booking-{moved.json()['id']}@cityhealth.test", "CONFIRMED")]


async def test_an_sms_gets_the_text_and_the_link_and_no_file(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    recorder = install(app, Recorder())  # an SMS gateway: send(phone, message, *, reference) only
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = (await book(client, app, resident_principal(resident_id), session["id"])).json()

    async def sent() -> bool:
        return any("预约成功" in message for _, message in recorder.sent)

    assert await until(sent, seconds=5.0)
    [(_, message)] = recorder.sent
    assert f"/c/{booked['id']}-" in message
