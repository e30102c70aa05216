"""A link a guardian declared for a minor shows and behaves as waiting for the member's own consent once the
member turns 18: `needs_member_consent` (computed when read, as the booking rule computes it), and staff may
record the adult's consent on it."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, booking_admin, publish, resident_principal
from tests.factories.family import for_member, link
from tests.factories.security import headers_for


async def _linked_at_seventeen(client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
                               clock: SimulatedClock, *, days: int = 43) -> tuple[int, int, int]:
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    member_id, number = await add_resident(database, settings, clock.now(), 54)  # born 2004-07-27: 17 today
    linked = await link(client, app, manager_id, number, "居民54", guardian_declaration=True)
    assert (linked.status_code, linked.json()["status"]) == (201, "active"), linked.text
    clock.advance(timedelta(days=days))  # 43 days: 2022-07-28, 18 years old
    return manager_id, member_id, int(linked.json()["id"])


async def _shown(client: httpx.AsyncClient, app: FastAPI, resident_id: int) -> list[tuple[int, str]]:
    listed = await client.get("/api/booking/family/links",
                              headers=await headers_for(app, resident_principal(resident_id)))
    assert listed.status_code == 200, listed.text
    return [(item["id"], item["status"]) for item in listed.json()]


async def test_a_link_of_a_member_come_of_age_shows_as_awaiting_their_consent(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await _linked_at_seventeen(client, app, database, settings, clock)
    for resident_id in (manager_id, member_id):
        assert await _shown(client, app, resident_id) == [(link_id, "needs_member_consent")]


async def test_the_shown_status_and_the_booking_rule_change_together_on_the_18th_birthday(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    manager_id, _, link_id = await _linked_at_seventeen(client, app, database, settings, clock, days=41)
    session = await publish(client, app, world, service_date=date(2022, 7, 30))
    assert await _shown(client, app, manager_id) == [(link_id, "active")]  # 2022-07-26: still 17
    held = await for_member(client, app, manager_id, link_id, "holds", {"session_id": session["id"]})
    assert held.status_code == 201, held.text
    clock.advance(timedelta(days=1))  # 2022-07-27: the 18th birthday, nothing written meanwhile
    assert await _shown(client, app, manager_id) == [(link_id, "needs_member_consent")]
    other = await publish(client, app, world, department_id=world.second_department_id,
                          service_date=date(2022, 7, 30))
    refused = await for_member(client, app, manager_id, link_id, "holds", {"session_id": other["id"]})
    assert (refused.status_code, refused.json()["code"], refused.json()["rule"]) == (
        403, "consent_not_live", "booking.family.consent")
    assert "needs_member_consent" in refused.json()["detail"]


async def test_staff_record_the_consent_of_a_member_come_of_age(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, _, link_id = await _linked_at_seventeen(client, app, database, settings, clock)
    recorded = await client.post(f"/api/booking/family/links/{link_id}/recorded-consent",
                                 headers=await headers_for(app, booking_admin()),
                                 json={"note": "the member, now of age, consented at the service desk"})
    assert recorded.status_code == 200, recorded.text
    assert (recorded.json()["status"], recorded.json()["consent_basis"]) == ("active", "recorded_consent")
