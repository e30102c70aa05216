"""The messages every booking gets: a confirmation, a cancellation, the day-before reminder at the hospital's
time (each once per booking, whatever is retried), the hospital's settings, and the appointment as .ics."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.messages_calendar import escape_text, event, fold
from cityhealth.booking.models import Notification
from cityhealth.booking.notifications import dispatch
from cityhealth.booking.release import at_business_time
from cityhealth.booking.reminders import send_reminders
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.protection import cipher_for
from tests.booking.outbox import Recorder, install, until
from tests.factories.booking import World, add_resident, book, count, publish, resident_principal, scheduler
from tests.factories.security import headers_for

ID_NUMBER = re.compile(r"\d{17}[\dXx]")


async def _messages(database: Database, kind: str) -> list[str]:
    async with database.transaction() as tx:
        return list((await tx.execute(select(Notification.message).where(Notification.kind == kind))).scalars())


async def _cancel(client: httpx.AsyncClient, app: FastAPI, resident_id: int, booking_id: int) -> httpx.Response:
    return await client.post(f"/api/booking/bookings/{booking_id}/cancel",
                             headers=await headers_for(app, resident_principal(resident_id)))


async def _the_day_before(clock: SimulatedClock, session: dict[str, object], at: time) -> None:
    day = date.fromisoformat(str(session["service_date"])) - timedelta(days=1)
    clock.advance(at_business_time(day, at) - clock.now())


async def test_a_booking_gets_one_confirmation_even_when_its_request_is_replayed(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    key = uuid.uuid4().hex
    for _ in range(2):
        booked = await book(client, app, resident_principal(resident_id), session["id"], key=key)
        assert booked.status_code == 201, booked.text
    [message] = await _messages(database, "booking_confirmed")
    assert "预约成功" in message
    assert f"第{booked.json()['slot_no']}号" in message
    assert number not in message
    assert not ID_NUMBER.search(message)


async def test_a_hold_is_confirmed_to_the_resident_only_when_they_confirm_it(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    headers = await headers_for(app, resident_principal(resident_id))
    held = await client.post("/api/booking/holds", json={"session_id": session["id"]},
                             headers=headers | {"Idempotency-Key": uuid.uuid4().hex})
    assert held.status_code == 201, held.text
    assert await _messages(database, "booking_confirmed") == []
    confirmed = await client.post("/api/booking/bookings", json={"hold_id": held.json()["id"]},
                                  headers=headers | {"Idempotency-Key": uuid.uuid4().hex})
    assert confirmed.status_code == 201, confirmed.text
    assert len(await _messages(database, "booking_confirmed")) == 1


async def test_a_cancelled_booking_gets_one_cancellation(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                         database: Database, settings: Settings,
                                                         clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = await book(client, app, resident_principal(resident_id), session["id"])
    for _ in range(2):
        assert (await _cancel(client, app, resident_id, booked.json()["id"])).status_code == 200
    [message] = await _messages(database, "booking_cancelled")
    assert "已取消" in message


async def test_the_reminder_goes_out_the_day_before_at_the_default_time_once(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    await book(client, app, resident_principal(resident_id), session["id"])
    await _the_day_before(clock, session, time(17, 59))
    assert await send_reminders(database, clock) == 0
    clock.advance(timedelta(minutes=1))
    assert await send_reminders(database, clock) == 1
    assert await send_reminders(database, clock) == 0  # a rerun adds nothing
    [message] = await _messages(database, "booking_reminder")
    assert "就诊提醒" in message
    assert "明天" in message


async def test_a_hospital_sets_its_reminder_time_and_turns_confirmations_off(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    body = {"confirmation_enabled": False, "reminder_time": "09:00:00+08:00"}
    url = f"/api/booking/message-settings/{world.hospital_id}"
    other = await client.put(url, json=body, headers=await headers_for(app, scheduler(world, world.other_hospital_id)))
    assert other.status_code == 404
    put = await client.put(url, json=body, headers=await headers_for(app, scheduler(world)))
    assert put.status_code == 200, put.text
    assert (put.json()["confirmation_enabled"], put.json()["reminder_time"]) == (False, "09:00:00+08:00")
    read = await client.get(url, headers=await headers_for(app, scheduler(world)))
    assert read.json() == put.json()
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    await book(client, app, resident_principal(resident_id), session["id"])
    assert await _messages(database, "booking_confirmed") == []
    await _the_day_before(clock, session, time(9, 0))
    assert await send_reminders(database, clock) == 1


async def test_a_reminder_of_a_booking_cancelled_before_it_went_out_is_never_sent(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    install(app, Recorder(down=True))  # the sending task fails: the reminder waits in the outbox
    await client.put(f"/api/booking/message-settings/{world.hospital_id}", json={"reminder_time": "09:00"},
                     headers=await headers_for(app, scheduler(world)))
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    booked = await book(client, app, resident_principal(resident_id), session["id"])
    await _the_day_before(clock, session, time(9, 30))
    assert await send_reminders(database, clock) == 1
    assert (await _cancel(client, app, resident_id, booked.json()["id"])).status_code == 200
    later = Recorder()
    await dispatch(database, clock, cipher_for(settings), later)
    assert [m for _, m in later.sent if "就诊提醒" in m] == []

    async def lapsed() -> bool:
        return await count(database, Notification, Notification.kind == "booking_reminder",
                           Notification.status == "lapsed") == 1

    # The sending task the cancellation deferred may hold the reminder's row (SKIP LOCKED) and lapse it itself.
    assert await until(lapsed)


def _unfold(text: str) -> list[str]:
    """RFC 5545 §3.1: a CRLF followed by one space or tab continues the previous line."""
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def test_calendar_lines_are_escaped_folded_and_end_in_crlf() -> None:
    summary = "就诊预约：市第一人民医院, 心内科; 专家门诊 \\ 第二诊室\n" + "长" * 60
    text = event(uid="booking-7@cityhealth.test", stamp=datetime(2022, 6, 15, 1, 30, tzinfo=UTC),
                 start=datetime.fromisoformat("2022-06-17T08:48:00+08:00"),
                 end=datetime.fromisoformat("2022-06-17T12:00:00+08:00"), summary=summary, location="医院",
                 description="第3号", cancelled=False)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode("utf-8")) <= 75 for line in text.split("\r\n"))
    fields = dict(line.split(":", 1) for line in _unfold(text) if line)
    assert _unescape(fields["SUMMARY"]) == summary
    assert fields["DTSTART"] == "20220617T004800Z"
    assert fields["DTEND"] == "20220617T040000Z"
    assert escape_text("a,b;c\\d") == "a\\,b\\;c\\\\d"
    assert fold("x" * 75) == "x" * 75


async def test_a_resident_downloads_their_booking_as_a_calendar_file(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    other_id, _ = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world)
    booked = (await book(client, app, resident_principal(resident_id), session["id"])).json()
    url = f"/api/booking/bookings/{booked['id']}/calendar.ics"
    response = await client.get(url, headers=await headers_for(app, resident_principal(resident_id)))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    lines = _unfold(response.content.decode("utf-8"))
    assert lines[0] == "BEGIN:VCALENDAR"
    assert "END:VCALENDAR" in lines
    fields = dict(line.split(":", 1) for line in lines if line and not line.startswith(("BEGIN", "END")))
    start = datetime.fromisoformat(booked["estimated_at"])
    assert fields["DTSTART"] == start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert fields["STATUS"] == "CONFIRMED"
    assert fields["UID"] == f"booking-{booked['id']}@cityhealth.test"
    theirs = await client.get(url, headers=await headers_for(app, resident_principal(other_id)))
    assert theirs.status_code == 404
