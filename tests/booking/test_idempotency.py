"""The Idempotency-Key header: replay, reuse with another payload, a request still in flight, a missing key."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.booking import service
from cityhealth.booking.idempotency import context_for
from cityhealth.booking.models import Booking, IdempotencyKey
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World, add_resident, book, count, online_app, publish, row_counts
from tests.factories.security import headers_for


async def test_replay_returns_the_original_result(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings,
                                                  clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    first = await book(client, app, online_app(world), session["id"], id_number, key="order-42")
    second = await book(client, app, online_app(world), session["id"], id_number, key="order-42")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await count(database, Booking) == 1


async def test_replay_after_sell_out_still_returns_the_booking(client: httpx.AsyncClient, app: FastAPI,
                                                               world: World, database: Database, settings: Settings,
                                                               clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world, capacity=1)
    first = await book(client, app, online_app(world), session["id"], id_number, key="only-slot")
    again = await book(client, app, online_app(world), session["id"], id_number, key="only-slot")
    assert again.status_code == 201
    assert again.json() == first.json()


async def test_same_key_with_another_payload_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                        database: Database, settings: Settings,
                                                        clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    morning = await publish(client, app, world)
    other = await publish(client, app, world, department_id=world.second_department_id)
    assert (await book(client, app, online_app(world), morning["id"], id_number, key="k1")).status_code == 201
    before = await row_counts(database)
    reused = await book(client, app, online_app(world), other["id"], id_number, key="k1")
    assert reused.status_code == 422
    body = reused.json()
    assert (body["code"], body["field"], body["rule"]) == ("idempotency_key_reused", "Idempotency-Key",
                                                           "idempotency_key.reused")
    assert await row_counts(database) == before


async def test_same_key_from_another_caller_is_a_different_request(client: httpx.AsyncClient, app: FastAPI,
                                                                   world: World, database: Database,
                                                                   settings: Settings, clock: SimulatedClock) -> None:
    from tests.factories.booking import third_party

    _, first = await add_resident(database, settings, clock.now(), 1)
    _, second = await add_resident(database, settings, clock.now(), 2)
    session = await publish(client, app, world)
    assert (await book(client, app, online_app(world), session["id"], first, key="shared")).status_code == 201
    assert (await book(client, app, third_party(world), session["id"], second, key="shared")).status_code == 201
    assert await count(database, IdempotencyKey) == 2


async def test_request_still_in_flight_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                  database: Database, settings: Settings, clock: SimulatedClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    entered, release = asyncio.Event(), asyncio.Event()
    real_pre_check = service._pre_check

    async def slow_pre_check(*args: object, **kwargs: object) -> object:
        # Held before any statement runs, so no database lock is held while the second request comes in.
        entered.set()
        await release.wait()
        return await real_pre_check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_pre_check", slow_pre_check)
    first = asyncio.create_task(book(client, app, online_app(world), session["id"], id_number, key="slow"))
    await asyncio.wait_for(entered.wait(), 10)
    second = await book(client, app, online_app(world), session["id"], id_number, key="slow")
    assert second.status_code == 409
    assert (second.json()["code"], second.json()["rule"]) == ("idempotency_key_in_flight",
                                                              "idempotency_key.in_flight")
    release.set()
    assert (await first).status_code == 201
    assert await count(database, Booking) == 1


async def test_booking_without_a_key_is_refused(client: httpx.AsyncClient, app: FastAPI, world: World,
                                                database: Database, settings: Settings, clock: SimulatedClock) -> None:
    _, id_number = await add_resident(database, settings, clock.now(), 1)
    session = await publish(client, app, world)
    before = await row_counts(database)
    response = await client.post("/api/booking/bookings", headers=await headers_for(app, online_app(world)),
                                 json={"session_id": session["id"], "id_number": id_number})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("idempotency_key_missing", "Idempotency-Key")
    assert await row_counts(database) == before


def test_the_fingerprint_is_made_only_when_needed_and_is_the_canonical_one() -> None:
    context = context_for("client:app", "k-1", "post", "/api/booking/bookings", b'{"b": 1, "a": "\xe4\xb8\x80"}')
    assert "fingerprint" not in vars(context)  # a refused attempt with a fresh key never needs it
    canonical = '{"a":"一","b":1}'.encode()
    assert context.fingerprint == hashlib.sha256(b"POST\n/api/booking/bookings\n" + canonical).hexdigest()
    reordered = context_for("client:app", "k-1", "POST", "/api/booking/bookings", b'{"a":"\xe4\xb8\x80","b":1}')
    assert reordered.fingerprint == context.fingerprint
