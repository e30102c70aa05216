"""An operator's merge and unmerge of patient identities: the records follow, the history keeps every step, an
unmerge that would leave records belonging to no one is refused, and automation never undoes the operator."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.factories.booking import World
from tests.factories.registry import audit_events
from tests.records.support import (
    LINKAGE,
    events_of,
    hours_ago,
    link,
    link_of,
    master,
    operator,
    person,
    residents_of_timeline,
    upload,
    visit,
)

GULOU = "H-GULOU"


async def _linked_with_a_visit(app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings,
                               clock: SimulatedClock, world: World) -> tuple[int, int]:
    first = await person(database, settings, clock, 3)
    second = await person(database, settings, clock, 5)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", first)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    return first.resident_id, second.resident_id


async def test_merge_moves_the_identity_and_its_records_and_is_audited(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    first, second = await _linked_with_a_visit(app, client, database, settings, clock, world)
    response = await client.post(f"{LINKAGE}/merge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "resident_id": second, "note": "ticket 7"})
    assert response.status_code == 200, response.text
    assert await residents_of_timeline(database) == {"v-1": second}
    assert (await events_of(database, world.hospital_id, "P001"))[-1] == (
        "merged", first, second, "operator", "staff:42")
    events = await audit_events(database, resource_type="records_link", action="update")
    assert sorted((e.resource_id, e.resident_id) for e in events) == sorted(
        [(f"{world.hospital_id}/P001", first), (f"{world.hospital_id}/P001", second)])


async def test_the_linker_never_undoes_an_operators_merge(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    _, second = await _linked_with_a_visit(app, client, database, settings, clock, world)
    await client.post(f"{LINKAGE}/merge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "resident_id": second, "note": "ticket 7"})
    await link(database, clock, settings, rebuild=True)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.resident_id, found.method) == (second, "operator")
    assert await residents_of_timeline(database) == {"v-1": second}


async def test_an_unmerge_that_would_orphan_records_is_refused_and_changes_nothing(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    first, _ = await _linked_with_a_visit(app, client, database, settings, clock, world)
    events = await events_of(database, world.hospital_id, "P001")
    response = await client.post(f"{LINKAGE}/unmerge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "note": "wrong person"})
    assert response.status_code == 409, response.text
    body = response.json()
    assert (body["code"], body["field"], body["rule"]) == ("unmerge_orphans_records", "to_resident_id",
                                                           "unmerge.orphans")
    assert "1 records" in body["detail"]
    assert await residents_of_timeline(database) == {"v-1": first}
    assert await events_of(database, world.hospital_id, "P001") == events


async def test_an_unmerge_onto_another_resident_moves_the_records_and_keeps_the_history(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    first, second = await _linked_with_a_visit(app, client, database, settings, clock, world)
    response = await client.post(f"{LINKAGE}/unmerge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "to_resident_id": second, "note": "mix-up"})
    assert response.status_code == 200, response.text
    assert await residents_of_timeline(database) == {"v-1": second}
    history = await client.get(f"{LINKAGE}/identities/{world.hospital_id}/P001", headers=await operator(app))
    assert [(e["kind"], e["from_resident_id"], e["to_resident_id"]) for e in history.json()["events"]] == [
        ("linked", None, first), ("unmerged", first, second)]


async def test_an_identity_without_records_may_be_unmerged_onto_no_one(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await link(database, clock, settings)
    response = await client.post(f"{LINKAGE}/unmerge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "note": "registered by mistake"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("unlinked", "operator.unmerged")


async def test_merge_onto_a_resident_who_does_not_exist_is_not_found(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    await _linked_with_a_visit(app, client, database, settings, clock, world)
    response = await client.post(f"{LINKAGE}/merge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "P001", "resident_id": 9999, "note": "x"})
    assert response.status_code == 404, response.text
    assert (response.json()["code"], response.json()["field"]) == ("resident_not_found", "resident_id")


async def test_merge_of_an_unknown_identity_is_not_found(app: FastAPI, client: httpx.AsyncClient,
                                                         world: World) -> None:
    response = await client.post(f"{LINKAGE}/merge", headers=await operator(app), json={
        "organization_id": world.hospital_id, "patient_key": "NOPE", "resident_id": 1, "note": "x"})
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "patient_identity_not_found"
