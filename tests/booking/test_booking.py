"""Booking a slot through each channel, and every refusal: a clear error and nothing written."""

from __future__ import annotations

from datetime import date, time, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.booking.models import Booking, MonthlyStat
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Scope
from tests.factories.booking import (
    TOMORROW,
    World,
    add_resident,
    book,
    book_by_phone,
    booking_admin,
    count,
    local,
    online_app,
    publish,
    resident_principal,
    row_counts,
    scheduler,
    third_party,
)
from tests.factories.security import headers_for, machine


async def test_app_books_a_released_slot_for_a_resident(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    resident_id, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    response = await book(client, app, online_app(world), session["id"], id_number)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "booked"
    assert body["channel"] == "online_12320"
    assert body["client_app_id"] == world.online_app_id
    assert body["slot_no"] == 1
    assert id_number not in response.text
    rows = await count(database, Booking, Booking.resident_id == resident_id, Booking.status == "booked")
    assert rows == 1
    assert await count(database, MonthlyStat, MonthlyStat.channel == "online_12320") == 1
    assert await count(database, AuditEvent, AuditEvent.resident_id == resident_id,
                       AuditEvent.resource_type == "booking") == 1


async def test_slot_numbers_follow_each_other_and_reuse_a_freed_one(client: httpx.AsyncClient, app: FastAPI,
                                                                    world: World, database: Database,
                                                                    settings: Settings, clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=3)
    numbers = []
    ids = []
    for seq in range(3):
        _, id_number = await add_resident(database, settings, clock.now(), 10 + seq)
        response = await book(client, app, online_app(world), session["id"], id_number)
        numbers.append(response.json()["slot_no"])
        ids.append(response.json()["id"])
    assert numbers == [1, 2, 3]
    headers = await headers_for(app, online_app(world))
    cancel = await client.post(f"/api/booking/bookings/{ids[1]}/cancel", headers=headers)
    assert cancel.status_code == 200, cancel.text
    _, id_number = await add_resident(database, settings, clock.now(), 20)
    again = await book(client, app, online_app(world), session["id"], id_number)
    assert again.json()["slot_no"] == 2


async def test_each_caller_gets_its_own_channel(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                database: Database, settings: Settings, clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=10)
    callers = [(scheduler(world), "clinic", None), (third_party(world), "third_party", world.third_party_app_id)]
    for seq, (principal, channel, app_id) in enumerate(callers):
        _, id_number = await add_resident(database, settings, clock.now(), 30 + seq)
        response = await book(client, app, principal, session["id"], id_number)
        assert response.status_code == 201, response.text
        assert (response.json()["channel"], response.json()["client_app_id"]) == (channel, app_id)
    _, id_number = await add_resident(database, settings, clock.now(), 35)
    by_phone = await book_by_phone(client, app, session["id"], id_number)  # a hotline agent, within a call
    assert by_phone.status_code == 201, by_phone.text
    assert (by_phone.json()["booking"]["channel"], by_phone.json()["booking"]["client_app_id"]) == ("phone", None)
    resident_id, _ = await add_resident(database, settings, clock.now(), 40)
    own = await book(client, app, resident_principal(resident_id), session["id"])
    assert own.json()["channel"] == "online_12320"


async def test_resident_books_only_for_themselves(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings,
                                                  clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, other_number = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world)
    before = await row_counts(database)
    response = await book(client, app, resident_principal(resident_id), session["id"], other_number)
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"], response.json()["rule"]) == (
        "self_only", "id_number", "booking.self_only")
    assert other_number not in response.text
    assert await row_counts(database) == before


async def _refused(client: httpx.AsyncClient, app: FastAPI, database: Database, principal: object, session_id: int,
                   id_number: str | None, status: int, code: str, field: str, rule: str, **extra: object) -> None:
    before = await row_counts(database)
    response = await book(client, app, principal, session_id, id_number, **extra)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["code"], body["field"], body.get("rule")) == (code, field, rule)
    assert await row_counts(database) == before


async def test_past_session_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                                       settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    clock.set(local(date(2022, 6, 17), time(9, 0)))  # the session started at 08:00
    await _refused(client, app, database, online_app(world), session["id"], id_number, 422, "session_past",
                   "session_id", "booking.session_past")


async def test_unreleased_session_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                             database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, service_date=date(2022, 6, 23))  # released 06-16 00:00
    await _refused(client, app, database, online_app(world), session["id"], id_number, 409, "not_released",
                   "session_id", "booking.release_window")
    clock.set(local(date(2022, 6, 16), time(0, 0)))
    response = await book(client, app, online_app(world), session["id"], id_number)
    assert response.status_code == 201, response.text


async def test_same_day_session_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                           database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, service_date=date(2022, 6, 15), start=time(14, 0), end=time(17, 0))
    await _refused(client, app, database, online_app(world), session["id"], id_number, 422, "same_day_not_allowed",
                   "session_id", "booking.same_day")


async def test_next_day_booking_closes_at_the_cutoff(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                     database: Database, settings: Settings,
                                                     clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, service_date=TOMORROW)
    clock.set(local(date(2022, 6, 15), time(12, 0)))
    await _refused(client, app, database, online_app(world), session["id"], id_number, 409, "next_day_closed",
                   "session_id", "booking.next_day_cutoff")


async def test_suspended_session_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                            database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    suspended = await client.post(f"/api/booking/sessions/{session['id']}/suspend", json={"reason": "医生出差"},
                                  headers=await headers_for(app, scheduler(world)))
    assert suspended.status_code == 200, suspended.text
    await _refused(client, app, database, online_app(world), session["id"], id_number, 409, "session_suspended",
                   "session_id", "booking.session_suspended")


async def test_banned_resident_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                          database: Database, settings: Settings, clock: SimulatedClock) -> None:
    from cityhealth.booking.models import Sanction

    resident_id, id_number = await add_resident(database, settings, clock.now(), 1)
    async with database.transaction() as tx:
        tx.add(Sanction(resident_id=resident_id, rule="no_show", no_show_count=3, starts_at=clock.now(),
                        ends_at=clock.now() + timedelta(days=90), created_at=clock.now()))
    session = await publish(client, app, world)
    await _refused(client, app, database, scheduler(world), session["id"], id_number, 403, "resident_banned",
                   "id_number", "booking.sanction")


async def test_invalid_id_number_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                            database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    wrong = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
    session = await publish(client, app, world)
    await _refused(client, app, database, online_app(world), session["id"], wrong, 422, "invalid_id_number",
                   "id_number", "id_number.check_char")
    response = await book(client, app, online_app(world), session["id"], wrong)
    assert response.json()["value"] == wrong[:6] + "********" + wrong[-4:]
    assert wrong not in response.text


async def test_unknown_resident_is_not_found(client: httpx.AsyncClient, app: FastAPI, world: World,
                                             database: Database, settings: Settings, clock: SimulatedClock) -> None:
    from cityhealth.registry.identifiers import make_resident_id

    session = await publish(client, app, world)
    stranger = make_resident_id("320104", date(1990, 5, 5), 123)
    await _refused(client, app, database, online_app(world), session["id"], stranger, 404, "resident_not_found",
                   "id_number", "booking.real_name")


async def test_unknown_channel_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                          database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    await _refused(client, app, database, online_app(world), session["id"], id_number, 422, "unknown_channel",
                   "channel", "booking.channel.unknown", channel="fax")


async def test_channel_disagreeing_with_the_caller_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                              world: World, database: Database, settings: Settings,
                                                              clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    await _refused(client, app, database, third_party(world), session["id"], id_number, 422, "channel_mismatch",
                   "channel", "channel.mismatch", channel="online_12320")


async def test_unknown_client_app_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                             database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    ghost = machine(Scope.BOOKING_READ, Scope.BOOKING_WRITE, client_app_id=9999, client_id="ghost")
    await _refused(client, app, database, ghost, session["id"], id_number, 422, "unknown_client_app",
                   "client_app_id", "booking.client_app.unknown")


async def test_app_of_a_non_app_channel_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                   database: Database, settings: Settings,
                                                   clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    ivr = machine(Scope.BOOKING_READ, Scope.BOOKING_WRITE, client_app_id=world.phone_app_id, client_id="ivr")
    await _refused(client, app, database, ivr, session["id"], id_number, 422, "unknown_channel", "channel",
                   "booking.channel.unknown")


async def test_caller_without_a_channel_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                   database: Database, settings: Settings,
                                                   clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    await _refused(client, app, database, booking_admin(), session["id"], id_number, 422, "unknown_channel",
                   "channel", "booking.channel.unknown")


async def test_third_party_beyond_its_quota_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                       database: Database, settings: Settings,
                                                       clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=5, quotas={"third_party": 1, "clinic": 2})
    _, first = await add_resident(database, settings, clock.now(), 1)
    _, second = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, third_party(world), session["id"], first)).status_code == 201
    await _refused(client, app, database, third_party(world), session["id"], second, 409, "quota_exhausted",
                   "channel", "booking.channel_quota")
    # The other channels still share the 2 unreserved slots, and the clinic keeps its own.
    assert (await book(client, app, online_app(world), session["id"], second)).status_code == 201


async def test_open_channels_cannot_take_reserved_slots(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=2, quotas={"clinic": 1})
    _, first = await add_resident(database, settings, clock.now(), 1)
    _, second = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, online_app(world), session["id"], first)).status_code == 201
    await _refused(client, app, database, online_app(world), session["id"], second, 409, "sold_out",
                   "session_id", "booking.sold_out")
    assert (await book(client, app, scheduler(world), session["id"], second)).status_code == 201


async def test_sold_out_session_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                           database: Database, settings: Settings, clock: SimulatedClock) -> None:
    session = await publish(client, app, world, capacity=1)
    _, first = await add_resident(database, settings, clock.now(), 1)
    _, second = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, online_app(world), session["id"], first)).status_code == 201
    await _refused(client, app, database, online_app(world), session["id"], second, 409, "sold_out", "session_id",
                   "booking.sold_out")


async def test_second_booking_in_a_department_the_same_day_is_refused(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    morning = await publish(client, app, world)
    afternoon = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    assert (await book(client, app, online_app(world), morning["id"], id_number)).status_code == 201
    await _refused(client, app, database, scheduler(world), afternoon["id"], id_number, 409, "same_department_day",
                   "session_id", "booking.one_per_department_day")


async def test_third_department_the_same_day_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    first = await publish(client, app, world, start=time(8, 0), end=time(9, 0))
    second = await publish(client, app, world, start=time(10, 0), end=time(11, 0),
                           department_id=world.second_department_id)
    third = await publish(client, app, world, start=time(14, 0), end=time(15, 0),
                          department_id=world.third_department_id)
    assert (await book(client, app, online_app(world), first["id"], id_number)).status_code == 201
    assert (await book(client, app, online_app(world), second["id"], id_number)).status_code == 201
    await _refused(client, app, database, online_app(world), third["id"], id_number, 409, "daily_department_cap",
                   "session_id", "booking.two_departments_a_day")


async def test_overlapping_booking_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                              database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    first = await publish(client, app, world, start=time(8, 0), end=time(10, 0))
    overlapping = await publish(client, app, world, start=time(9, 0), end=time(11, 0),
                                department_id=world.second_department_id)
    assert (await book(client, app, online_app(world), first["id"], id_number)).status_code == 201
    await _refused(client, app, database, online_app(world), overlapping["id"], id_number, 409,
                   "overlapping_booking", "session_id", "booking.no_overlap")


async def test_clinic_books_only_at_its_own_hospital(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                     database: Database, settings: Settings,
                                                     clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    elsewhere = await publish(client, app, world, organization_id=world.other_hospital_id,
                              department_id=world.other_department_id)
    await _refused(client, app, database, scheduler(world), elsewhere["id"], id_number, 404, "session_not_found",
                   "session_id", None)  # type: ignore[arg-type]
