"""Booking for a family member the resident manages: consent, real name, the member's caps and sanctions."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import Booking, FamilyLink, Sanction
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.factories.booking import (
    World,
    add_resident,
    book,
    booking_admin,
    count,
    publish,
    resident_principal,
    row_counts,
)
from tests.factories.family import ADULT_SEQ, MINOR_SEQ, for_member, link, linked_minor
from tests.factories.security import headers_for


async def test_guardian_books_for_a_linked_child(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                 database: Database, settings: Settings,
                                                 clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    session = await publish(client, app, world)
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": session["id"]})
    assert booked.status_code == 201, booked.text
    async with database.transaction() as tx:
        row = (await tx.execute(select(Booking).where(Booking.id == booked.json()["id"]))).scalar_one()
        family = (await tx.execute(select(FamilyLink))).scalar_one()
    assert (row.resident_id, row.created_by) == (member_id, f"resident-account:{manager_id}")
    assert (family.consent_basis, family.consented_by) == ("guardian_declaration", f"resident-account:{manager_id}")
    assert await count(database, AuditEvent, AuditEvent.resource_type == "booking", AuditEvent.action == "create",
                       AuditEvent.resident_id == member_id,
                       AuditEvent.actor == f"resident-account:{manager_id}") == 1


async def test_the_booking_is_visible_to_the_member_and_the_manager(client: httpx.AsyncClient, app: FastAPI,
                                                                    world: World, database: Database,
                                                                    settings: Settings, clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    session = await publish(client, app, world)
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": session["id"]})
    assert booked.status_code == 201, booked.text
    as_member = await headers_for(app, resident_principal(member_id))
    as_manager = await headers_for(app, resident_principal(manager_id))
    member_view = await client.get("/api/booking/bookings", headers=as_member)
    manager_view = await client.get(f"/api/booking/family/links/{link_id}/bookings", headers=as_manager)
    manager_own = await client.get("/api/booking/bookings", headers=as_manager)
    assert [b["id"] for b in member_view.json()] == [booked.json()["id"]]
    assert [b["id"] for b in manager_view.json()] == [booked.json()["id"]]
    assert manager_own.json() == []


async def test_a_minor_is_linked_only_on_the_guardians_declaration(client: httpx.AsyncClient, app: FastAPI,
                                                                    database: Database, settings: Settings,
                                                                    clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    response = await link(client, app, manager_id, number, f"居民{MINOR_SEQ}")
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("guardian_declaration_required",
                                                                   "guardian_declaration")
    assert await count(database, FamilyLink) == 0


async def test_the_member_must_match_the_master_index_by_name(client: httpx.AsyncClient, app: FastAPI,
                                                              database: Database, settings: Settings,
                                                              clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    response = await link(client, app, manager_id, number, "别人", guardian_declaration=True)
    assert response.status_code == 422
    assert response.json()["code"] == "real_name_check_failed"
    assert number not in response.text
    assert await count(database, FamilyLink) == 0


async def test_an_adult_member_is_booked_for_only_after_confirming(client: httpx.AsyncClient, app: FastAPI,
                                                                   world: World, database: Database,
                                                                   settings: Settings, clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    member_id, number = await add_resident(database, settings, clock.now(), ADULT_SEQ)
    linked = await link(client, app, manager_id, number, f"居民{ADULT_SEQ}", relationship="parent")
    assert (linked.status_code, linked.json()["status"]) == (201, "pending")
    link_id = linked.json()["id"]
    session = await publish(client, app, world)
    before = await row_counts(database)
    refused = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": session["id"]})
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_not_live")
    assert await row_counts(database) == before
    own = await client.post(f"/api/booking/family/links/{link_id}/confirm",
                            headers=await headers_for(app, resident_principal(manager_id)))
    assert (own.status_code, own.json()["code"]) == (403, "member_consents")
    confirmed = await client.post(f"/api/booking/family/links/{link_id}/confirm",
                                  headers=await headers_for(app, resident_principal(member_id)))
    assert (confirmed.json()["status"], confirmed.json()["consent_basis"]) == ("active", "member_confirmation")
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": session["id"]})
    assert booked.status_code == 201, booked.text


async def test_staff_record_an_adult_members_consent(client: httpx.AsyncClient, app: FastAPI, database: Database,
                                                     settings: Settings, clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, number = await add_resident(database, settings, clock.now(), ADULT_SEQ)
    linked = await link(client, app, manager_id, number, f"居民{ADULT_SEQ}", relationship="parent")
    recorded = await client.post(f"/api/booking/family/links/{linked.json()['id']}/recorded-consent",
                                 headers=await headers_for(app, booking_admin()),
                                 json={"note": "consent given at the hospital's service desk"})
    assert recorded.status_code == 200, recorded.text
    assert (recorded.json()["status"], recorded.json()["consent_basis"]) == ("active", "recorded_consent")


async def test_another_residents_link_looks_like_not_found(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                           database: Database, settings: Settings,
                                                           clock: SimulatedClock) -> None:
    _, _, link_id = await linked_minor(client, app, database, settings, clock)
    intruder_id, _ = await add_resident(database, settings, clock.now(), 3)
    session = await publish(client, app, world)
    booked = await for_member(client, app, intruder_id, link_id, "bookings", {"session_id": session["id"]})
    listed = await client.get(f"/api/booking/family/links/{link_id}/bookings",
                              headers=await headers_for(app, resident_principal(intruder_id)))
    revoked = await client.post(f"/api/booking/family/links/{link_id}/revoke",
                                headers=await headers_for(app, resident_principal(intruder_id)))
    for response in (booked, listed, revoked):
        assert (response.status_code, response.json()["code"]) == (404, "family_link_not_found")
    assert await count(database, Booking) == 0
    assert await count(database, AuditEvent, AuditEvent.actor == f"resident-account:{intruder_id}",
                       AuditEvent.outcome == "denied") == 3


async def test_a_revoked_consent_stops_new_bookings_and_keeps_the_old(client: httpx.AsyncClient, app: FastAPI,
                                                                      world: World, database: Database,
                                                                      settings: Settings,
                                                                      clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    first = await publish(client, app, world)
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": first["id"]})
    assert booked.status_code == 201, booked.text
    revoked = await client.post(f"/api/booking/family/links/{link_id}/revoke",
                                headers=await headers_for(app, resident_principal(member_id)))
    assert revoked.json()["status"] == "revoked"
    other = await publish(client, app, world, department_id=world.second_department_id)
    refused = await for_member(client, app, manager_id, link_id, "holds", {"session_id": other["id"]})
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_not_live")
    assert await count(database, Booking, Booking.resident_id == member_id, Booking.status == "booked") == 1


async def test_the_caps_counted_are_the_members(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                database: Database, settings: Settings,
                                                clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    first, second = await publish(client, app, world), await publish(client, app, world)
    assert (await book(client, app, resident_principal(manager_id), first["id"])).status_code == 201
    booked = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": first["id"]})
    assert booked.status_code == 201, booked.text  # the manager's own booking that day is not the member's
    again = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": second["id"]})
    assert (again.status_code, again.json()["code"]) == (409, "same_department_day")
    assert await count(database, Booking, Booking.resident_id == member_id) == 1


async def test_the_members_sanction_applies(client: httpx.AsyncClient, app: FastAPI, world: World,
                                            database: Database, settings: Settings, clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    now = clock.now()
    async with database.transaction() as tx:
        tx.add(Sanction(resident_id=member_id, rule="no_show", no_show_count=3, starts_at=now - timedelta(days=1),
                        ends_at=now + timedelta(days=30), created_at=now))
    session = await publish(client, app, world)
    refused = await for_member(client, app, manager_id, link_id, "bookings", {"session_id": session["id"]})
    assert (refused.status_code, refused.json()["code"]) == (403, "resident_banned")
    assert (await book(client, app, resident_principal(manager_id), session["id"])).status_code == 201


async def test_the_manager_holds_confirms_and_cancels_for_the_member(client: httpx.AsyncClient, app: FastAPI,
                                                                     world: World, database: Database,
                                                                     settings: Settings,
                                                                     clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    session = await publish(client, app, world)
    held = await for_member(client, app, manager_id, link_id, "holds", {"session_id": session["id"]})
    assert (held.status_code, held.json()["status"]) == (201, "held"), held.text
    confirmed = await for_member(client, app, manager_id, link_id, "bookings", {"hold_id": held.json()["id"]})
    assert (confirmed.status_code, confirmed.json()["status"]) == (201, "booked"), confirmed.text
    cancelled = await for_member(client, app, manager_id, link_id, f"bookings/{held.json()['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled"), cancelled.text
    assert await count(database, Booking, Booking.resident_id == member_id, Booking.status == "cancelled") == 1


async def test_linking_again_returns_the_same_link(client: httpx.AsyncClient, app: FastAPI, database: Database,
                                                   settings: Settings, clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    _, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    first = await link(client, app, manager_id, number, f"居民{MINOR_SEQ}", guardian_declaration=True)
    again = await link(client, app, manager_id, number, f"居民{MINOR_SEQ}", guardian_declaration=True)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert await count(database, FamilyLink) == 1


async def test_a_guardians_declaration_lapses_when_the_member_comes_of_age(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    member_id, number = await add_resident(database, settings, clock.now(), 54)  # born 2004-07-27: 17 today
    linked = await link(client, app, manager_id, number, "居民54", guardian_declaration=True)
    assert (linked.status_code, linked.json()["status"]) == (201, "active"), linked.text
    clock.advance(timedelta(days=43))  # 2022-07-28: 18 years old
    session = await publish(client, app, world, service_date=date(2022, 7, 30))
    refused = await for_member(client, app, manager_id, linked.json()["id"], "bookings", {"session_id": session["id"]})
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_not_live")
    confirmed = await client.post(f"/api/booking/family/links/{linked.json()['id']}/confirm",
                                  headers=await headers_for(app, resident_principal(member_id)))
    assert confirmed.json()["consent_basis"] == "member_confirmation"
    booked = await for_member(client, app, manager_id, linked.json()["id"], "bookings", {"session_id": session["id"]})
    assert booked.status_code == 201, booked.text
