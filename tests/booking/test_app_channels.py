"""An app's further channels, and hospitals' own front-ends staying out of the bulletin's app table."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.models import ClientApp
from cityhealth.security.principals import Role, Scope
from tests.factories.booking import World, add_resident, book, online_app, publish
from tests.factories.security import headers_for, machine, staff


async def _statistics(client: httpx.AsyncClient, app: FastAPI) -> dict[str, object]:
    editor = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=3))
    response = await client.get("/api/booking/statistics", params={"month": "2022-06"}, headers=editor)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_an_app_books_third_party_when_it_claims_one_of_its_further_channels(
    client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
    clock: SimulatedClock,
) -> None:
    async with database.transaction() as tx:
        await tx.execute(update(ClientApp).where(ClientApp.id == world.online_app_id)
                         .values(other_channels="third_party"))
    session = await publish(client, app, world, capacity=5)
    _, first = await add_resident(database, settings, clock.now(), 1)
    _, second = await add_resident(database, settings, clock.now(), 2)
    assert (await book(client, app, online_app(world), session["id"], first, channel="third_party")).status_code == 201
    assert (await book(client, app, online_app(world), session["id"], second)).status_code == 201
    body = await _statistics(client, app)
    assert body["by_hospital"] == [
        {"hospital": "南京鼓楼医院", "online_12320": 1, "phone": 0, "clinic": 0, "third_party": 1}]


async def test_claiming_a_channel_the_app_does_not_have_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
    clock: SimulatedClock,
) -> None:
    session = await publish(client, app, world, capacity=5)
    _, number = await add_resident(database, settings, clock.now(), 1)
    response = await book(client, app, online_app(world), session["id"], number, channel="third_party")
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["rule"]) == ("channel", "channel.mismatch")
    assert (await _statistics(client, app))["by_hospital"] == []


async def test_a_hospitals_own_front_end_is_left_out_of_the_app_table(
    client: httpx.AsyncClient, app: FastAPI, world: World, database: Database, settings: Settings,
    clock: SimulatedClock,
) -> None:
    async with database.transaction() as tx:
        own = ClientApp(code="gulou-own", name="南京鼓楼医院自有预约渠道", channel="third_party",
                        organization_id=world.hospital_id, is_active=True, created_at=clock.now(),
                        updated_at=clock.now())
        tx.add(own)
        await tx.flush()
        own_id = own.id
    session = await publish(client, app, world, capacity=5)
    _, number = await add_resident(database, settings, clock.now(), 1)
    front_end = machine(Scope.BOOKING_READ, Scope.BOOKING_WRITE, client_app_id=own_id, client_id="gulou-own")
    assert (await book(client, app, front_end, session["id"], number)).status_code == 201
    body = await _statistics(client, app)
    assert body["by_hospital"] == [
        {"hospital": "南京鼓楼医院", "online_12320": 0, "phone": 0, "clinic": 0, "third_party": 1}]
    assert body["by_app"] == []
