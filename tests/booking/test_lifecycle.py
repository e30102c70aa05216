"""After booking: cancellation, check-in, no-shows and sanctions, rescheduling."""

from __future__ import annotations

from datetime import date, time

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.lifecycle import mark_no_shows
from cityhealth.booking.models import Booking, Sanction
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.factories.booking import (
    IN_TWO_DAYS,
    World,
    add_resident,
    book,
    book_by_phone,
    booking_admin,
    count,
    local,
    publish,
    resident_principal,
    row_counts,
    scheduler,
    third_party,
)
from tests.factories.security import headers_for


async def _booked(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
                  clock: SimulatedClock, seq: int = 1, **session: object) -> tuple[int, str, dict[str, object]]:
    resident_id, id_number = await add_resident(database, settings, clock.now(), seq)
    created = await publish(client, app, world, **session)  # type: ignore[arg-type]
    response = await book(client, app, resident_principal(resident_id), created["id"])
    assert response.status_code == 201, response.text
    return resident_id, id_number, response.json()


async def test_resident_cancels_before_the_cutoff(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings,
                                                  clock: SimulatedClock) -> None:
    resident_id, _, booking = await _booked(client, app, world, database, settings, clock)
    headers = await headers_for(app, resident_principal(resident_id))
    response = await client.post(f"/api/booking/bookings/{booking['id']}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["end_reason"]) == ("cancelled", "cancelled")
    again = await client.post(f"/api/booking/bookings/{booking['id']}/cancel", headers=headers)
    assert again.status_code == 200
    assert again.json() == response.json()
    session = await client.get(f"/api/booking/sessions/{booking['session_id']}", headers=headers)
    assert session.json()["available"] == 5


async def test_cancelling_someone_elses_booking_is_not_found(client: httpx.AsyncClient, app: FastAPI,
                                                             world: World, database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    _, _, booking = await _booked(client, app, world, database, settings, clock)
    intruder_id, _ = await add_resident(database, settings, clock.now(), 2)
    before = await row_counts(database)
    for principal in (resident_principal(intruder_id), third_party(world)):
        response = await client.post(f"/api/booking/bookings/{booking['id']}/cancel",
                                     headers=await headers_for(app, principal))
        assert response.status_code == 404
        assert (response.json()["code"], response.json()["field"]) == ("booking_not_found", "booking_id")
    assert await row_counts(database) == before
    assert await count(database, Booking, Booking.status == "booked") == 1


async def test_cancellation_after_the_cutoff_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    resident_id, _, booking = await _booked(client, app, world, database, settings, clock)
    clock.set(local(date(2022, 6, 16), time(16, 1)))  # the default cut-off: 16:00 the day before
    before = await row_counts(database)
    response = await client.post(f"/api/booking/bookings/{booking['id']}/cancel",
                                 headers=await headers_for(app, resident_principal(resident_id)))
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["field"], body["rule"]) == ("cancellation_closed", "booking_id",
                                                           "booking.cancel_cutoff")
    assert await row_counts(database) == before
    assert await count(database, Booking, Booking.status == "booked") == 1


async def test_hospital_without_cancellation_refuses_it(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    policy = await client.put(f"/api/booking/policies/{world.hospital_id}", headers=await headers_for(
        app, scheduler(world)), json={"cancellation_allowed": False})
    assert policy.status_code == 200, policy.text
    resident_id, _, booking = await _booked(client, app, world, database, settings, clock)
    response = await client.post(f"/api/booking/bookings/{booking['id']}/cancel",
                                 headers=await headers_for(app, resident_principal(resident_id)))
    assert response.status_code == 409
    assert response.json()["rule"] == "booking.cancel_cutoff"


async def test_hospital_checks_a_patient_in_before_the_pickup_deadline(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, _, booking = await _booked(client, app, world, database, settings, clock)
    clock.set(local(IN_TWO_DAYS, time(8, 20)))
    response = await client.post(f"/api/booking/bookings/{booking['id']}/check-in",
                                 headers=await headers_for(app, scheduler(world)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "checked_in"


async def test_check_in_after_the_pickup_deadline_is_refused(client: httpx.AsyncClient, app: FastAPI,
                                                             world: World, database: Database, settings: Settings,
                                                             clock: SimulatedClock) -> None:
    _, _, booking = await _booked(client, app, world, database, settings, clock)
    clock.set(local(IN_TWO_DAYS, time(8, 31)))  # the session starts 08:00, pick-up closes 30 minutes later
    response = await client.post(f"/api/booking/bookings/{booking['id']}/check-in",
                                 headers=await headers_for(app, scheduler(world)))
    assert response.status_code == 409
    assert response.json()["code"] == "checkin_closed"
    assert await count(database, Booking, Booking.status == "booked") == 1


async def test_other_hospital_cannot_check_a_patient_in(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    _, _, booking = await _booked(client, app, world, database, settings, clock)
    clock.set(local(IN_TWO_DAYS, time(8, 0)))
    response = await client.post(f"/api/booking/bookings/{booking['id']}/check-in",
                                 headers=await headers_for(app, scheduler(world, world.other_hospital_id)))
    assert response.status_code == 404


async def _no_show(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
                   clock: SimulatedClock, resident_id: int, day: date) -> None:
    created = await publish(client, app, world, service_date=day)
    response = await book(client, app, resident_principal(resident_id), created["id"])
    assert response.status_code == 201, response.text
    clock.set(local(day, time(9, 0)))
    await mark_no_shows(database, clock)


async def test_three_no_shows_ban_the_resident_on_every_channel(client: httpx.AsyncClient, app: FastAPI,
                                                                world: World, database: Database, settings: Settings,
                                                                clock: SimulatedClock) -> None:
    resident_id, id_number = await add_resident(database, settings, clock.now(), 1)
    for day in (date(2022, 6, 17), date(2022, 6, 20), date(2022, 6, 23)):
        await _no_show(client, app, world, database, settings, clock, resident_id, day)
    assert await count(database, Booking, Booking.status == "no_show") == 3
    async with database.transaction() as tx:
        sanction = (await tx.execute(select(Sanction))).scalar_one()
    assert (sanction.ends_at - sanction.starts_at).days == 90
    session = await publish(client, app, world, service_date=date(2022, 6, 26))
    for principal, number in ((resident_principal(resident_id), None), (third_party(world), id_number)):
        refused = await book(client, app, principal, session["id"], number)
        assert refused.status_code == 403
        assert refused.json()["code"] == "resident_banned"
    by_phone = await book_by_phone(client, app, session["id"], id_number)
    assert (by_phone.status_code, by_phone.json()["code"]) == (403, "resident_banned")


async def test_staff_override_lifts_a_ban_with_a_reason_and_is_audited(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    resident_id, id_number = await add_resident(database, settings, clock.now(), 1)
    for day in (date(2022, 6, 17), date(2022, 6, 20), date(2022, 6, 23)):
        await _no_show(client, app, world, database, settings, clock, resident_id, day)
    admin = await headers_for(app, booking_admin())
    found = await client.post("/api/booking/sanctions/search", headers=admin, json={"id_number": id_number})
    assert found.status_code == 200, found.text
    sanction_id = found.json()[0]["id"]
    no_reason = await client.post(f"/api/booking/sanctions/{sanction_id}/lift", headers=admin, json={"reason": ""})
    assert no_reason.status_code == 422
    lifted = await client.post(f"/api/booking/sanctions/{sanction_id}/lift", headers=admin,
                               json={"reason": "就诊当天住院抢救，经核实免于处罚"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lift_reason"] == "就诊当天住院抢救，经核实免于处罚"
    assert await count(database, AuditEvent, AuditEvent.resource_type == "booking_sanction",
                       AuditEvent.resident_id == resident_id, AuditEvent.action == "update") == 1
    session = await publish(client, app, world, service_date=date(2022, 6, 26))
    assert (await book(client, app, resident_principal(resident_id), session["id"])).status_code == 201


async def test_sanction_rule_is_configurable(client: httpx.AsyncClient, app: FastAPI, world: World,
                                             database: Database, settings: Settings, clock: SimulatedClock) -> None:
    rule = await client.put("/api/booking/sanction-rule", headers=await headers_for(app, booking_admin()),
                            json={"no_show_threshold": 1, "window_days": 30, "ban_days": 7})
    assert rule.status_code == 200, rule.text
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    await _no_show(client, app, world, database, settings, clock, resident_id, date(2022, 6, 17))
    async with database.transaction() as tx:
        sanction = (await tx.execute(select(Sanction))).scalar_one()
    assert (sanction.ends_at - sanction.starts_at).days == 7


async def test_reschedule_moves_the_booking_in_one_step(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    resident_id, _, booking = await _booked(client, app, world, database, settings, clock)
    later = await publish(client, app, world, start=time(14, 0), end=time(17, 0))
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": "move-1"}
    moved = await client.post(f"/api/booking/bookings/{booking['id']}/reschedule", headers=headers,
                              json={"session_id": later["id"]})
    assert moved.status_code == 201, moved.text
    assert moved.json()["session_id"] == later["id"]
    replay = await client.post(f"/api/booking/bookings/{booking['id']}/reschedule", headers=headers,
                               json={"session_id": later["id"]})
    assert replay.json() == moved.json()
    active = await count(database, Booking, Booking.resident_id == resident_id, Booking.status == "booked")
    assert active == 1
    assert await count(database, Booking, Booking.status == "rescheduled") == 1
