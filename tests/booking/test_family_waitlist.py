"""A manager puts a family member on a full session's waitlist, lists and leaves the member's entries."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.booking.models import WaitlistEntry
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, publish, resident_principal
from tests.factories.family import linked_minor
from tests.factories.security import headers_for


async def _full_session(client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
                        settings: Settings, clock: SimulatedClock) -> int:
    other, _ = await add_resident(database, settings, clock.now(), 9)
    session = await publish(client, app, world, capacity=1)
    assert (await book(client, app, resident_principal(other), session["id"])).status_code == 201
    return int(session["id"])


async def test_the_manager_puts_the_member_on_a_waitlist_lists_and_leaves_it(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    manager_id, member_id, link_id = await linked_minor(client, app, database, settings, clock)
    session_id = await _full_session(client, app, world, database, settings, clock)
    headers = await headers_for(app, resident_principal(manager_id))
    url = f"/api/booking/family/links/{link_id}/waitlist"
    joined = await client.post(url, json={"session_id": session_id}, headers=headers)
    assert joined.status_code == 201, joined.text
    async with database.transaction() as tx:
        entry = (await tx.execute(select(WaitlistEntry))).scalar_one()
    assert (entry.resident_id, entry.created_by) == (member_id, f"resident-account:{manager_id}")
    listed = await client.get(url, headers=headers)
    assert [e["id"] for e in listed.json()] == [joined.json()["id"]]
    assert (await client.get("/api/booking/waitlist", headers=headers)).json() == []  # the manager's own: none
    left = await client.post(f"{url}/{entry.id}/leave", headers=headers)
    assert (left.status_code, left.json()["status"]) == (200, "cancelled")


async def test_a_revoked_link_puts_no_one_on_a_waitlist(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    manager_id, _, link_id = await linked_minor(client, app, database, settings, clock)
    session_id = await _full_session(client, app, world, database, settings, clock)
    headers = await headers_for(app, resident_principal(manager_id))
    revoked = await client.post(f"/api/booking/family/links/{link_id}/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    joined = await client.post(f"/api/booking/family/links/{link_id}/waitlist", json={"session_id": session_id},
                               headers=headers)
    assert (joined.status_code, joined.json()["code"]) == (403, "consent_not_live")
    async with database.transaction() as tx:
        assert (await tx.execute(select(WaitlistEntry))).scalars().all() == []


async def test_the_manager_cannot_leave_an_entry_of_someone_else_through_the_link(
        client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
        clock: SimulatedClock) -> None:
    manager_id, _, link_id = await linked_minor(client, app, database, settings, clock)
    session_id = await _full_session(client, app, world, database, settings, clock)
    stranger, _ = await add_resident(database, settings, clock.now(), 8)
    theirs = await client.post("/api/booking/waitlist", json={"session_id": session_id},
                               headers=await headers_for(app, resident_principal(stranger)))
    assert theirs.status_code == 201, theirs.text
    left = await client.post(f"/api/booking/family/links/{link_id}/waitlist/{theirs.json()['id']}/leave",
                             headers=await headers_for(app, resident_principal(manager_id)))
    assert (left.status_code, left.json()["code"]) == (404, "waitlist_entry_not_found")
