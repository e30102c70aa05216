"""The phone channel: a hotline agent (a supervisor too) acts for a resident only within their own open call, at
the hotline desk; the booking API refuses them outside one (403, the rule named, audited, nothing written)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role
from tests.factories.booking import World, add_resident, book_by_phone, publish, row_counts
from tests.factories.registry import audit_events
from tests.factories.security import headers_for, staff

OUTSIDE = ("outside_a_call", "call_id", "hotline.desk.within_call")


def _refusal(response: httpx.Response) -> tuple[str, str, str]:
    assert response.status_code == 403, response.text
    body = response.json()
    return body["code"], body["field"], body["rule"]


async def test_an_agents_booking_outside_a_call_is_refused_and_audited_and_within_one_it_is_made(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    for role, user_id in ((Role.HOTLINE_AGENT, 7), (Role.HOTLINE_SUPERVISOR, 8)):
        before = await row_counts(database)
        response = await client.post("/api/booking/bookings", json={"session_id": session["id"], "id_number": number},
                                     headers=await headers_for(app, staff(role, user_id=user_id))
                                     | {"Idempotency-Key": f"direct-{user_id}"})
        assert _refusal(response) == OUTSIDE
        assert number not in response.text
        assert await row_counts(database) == before
        denied = await audit_events(database, actor=f"staff:{user_id}", action="denied")
        assert [(event.resource_type, event.outcome, event.detail) for event in denied] == [
            ("booking", "denied", "outside_a_call")]
    booked = await book_by_phone(client, app, session["id"], number)
    assert booked.status_code == 201, booked.text
    assert (booked.json()["booking"]["channel"], booked.json()["booking"]["status"]) == ("phone", "booked")


async def test_every_other_way_an_agent_names_a_resident_through_the_booking_api_is_refused(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    other = await publish(client, app, world, capacity=1)
    booked = (await book_by_phone(client, app, session["id"], number)).json()["booking"]
    headers = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7))
    before = await row_counts(database)
    attempts = [
        ("POST", "/api/booking/holds", {"session_id": other["id"], "id_number": number}),
        ("POST", "/api/booking/waitlist", {"session_id": other["id"], "id_number": number}),
        ("POST", f"/api/booking/bookings/{booked['id']}/cancel", {"id_number": number}),
        ("POST", f"/api/booking/bookings/{booked['id']}/reschedule", {"session_id": other["id"], "id_number": number}),
        ("GET", f"/api/booking/bookings/{booked['id']}", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=headers | {"Idempotency-Key": path})
        assert _refusal(response) == OUTSIDE, path
    assert await row_counts(database) == before
