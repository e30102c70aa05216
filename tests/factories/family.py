"""Family booking test data: a manager, a linked member, and the calls the family routes take."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import add_resident, resident_principal
from tests.factories.security import headers_for

MINOR_SEQ = 29  # add_resident: born 2009, 13 years old on the test clock's day
ADULT_SEQ = 2  # born 1982


async def link(client: httpx.AsyncClient, app: FastAPI, manager_id: int, id_number: str, name: str, *,
               relationship: str = "child", guardian_declaration: bool = False) -> httpx.Response:
    headers = await headers_for(app, resident_principal(manager_id))
    return await client.post("/api/booking/family/links", headers=headers,
                             json={"id_number": id_number, "name": name, "relationship": relationship,
                                   "guardian_declaration": guardian_declaration})


async def linked_minor(client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
                       clock: SimulatedClock) -> tuple[int, int, int]:
    """A manager and their child, linked on the guardian's declaration: (manager id, member id, link id)."""
    manager_id, _ = await add_resident(database, settings, clock.now(), 1)
    member_id, number = await add_resident(database, settings, clock.now(), MINOR_SEQ)
    response = await link(client, app, manager_id, number, f"居民{MINOR_SEQ}", guardian_declaration=True)
    assert response.status_code == 201, response.text
    return manager_id, member_id, response.json()["id"]


async def for_member(client: httpx.AsyncClient, app: FastAPI, manager_id: int, link_id: int, what: str,
                     payload: dict[str, Any] | None = None, *, key: str | None = None) -> httpx.Response:
    """POST to the link's `what` (holds, bookings, bookings/N/cancel, bookings/N/reschedule) as the manager."""
    headers = await headers_for(app, resident_principal(manager_id)) | {"Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post(f"/api/booking/family/links/{link_id}/{what}", headers=headers, json=payload)
