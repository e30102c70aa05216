"""The booking attempt routes call their endpoint without FastAPI's dependency solving: same answers."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, resident_principal
from tests.factories.security import headers_for


async def test_an_attempt_with_an_invalid_body_names_the_field(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                                database: Database, settings: Settings,
                                                                clock: SimulatedClock) -> None:
    resident_id, _ = await add_resident(database, settings, clock.now(), 1)
    headers = await headers_for(app, resident_principal(resident_id)) | {"Idempotency-Key": "k-invalid"}
    for path in ("/api/booking/bookings", "/api/booking/holds"):
        response = await client.post(path, json={"session_id": "x"}, headers=headers)
        assert response.status_code == 422, response.text
        assert (response.json()["code"], response.json()["field"]) == ("validation_failed", "session_id")
        assert response.json()["rule"] == "int_parsing"
        empty = await client.post(path, content=b"", headers=headers | {"content-type": "application/json"})
        assert (empty.status_code, empty.json()["field"], empty.json()["rule"]) == (422, "body", "missing")


async def test_an_attempt_is_authenticated_before_its_body_is_read(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/api/booking/bookings", json={"session_id": "x"},
                                 headers={"Idempotency-Key": "k-anonymous"})
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"
