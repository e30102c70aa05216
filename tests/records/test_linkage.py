"""Patient linkage as records arrive: the ID number's keyed hash links, and what it cannot link is kept and
reported; the records of a linked patient follow into the resident's index, whatever order they came in."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import Record
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.records.models import LinkCursor, PatientLink
from tests.factories.booking import World
from tests.records.support import (
    LINKAGE,
    diagnosis,
    events_of,
    hours_ago,
    link,
    link_of,
    master,
    operator,
    person,
    residents_of_timeline,
    timeline_rows,
    upload,
    visit,
)

GULOU = "H-GULOU"


async def test_a_valid_id_number_links_the_patient_to_its_resident(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    counts = await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.resident_id, found.method, found.reason) == ("linked", who.resident_id, "id_number",
                                                                             None)
    assert (counts.read, counts.linked) == (1, 1)
    assert await events_of(database, world.hospital_id, "P001") == [
        ("linked", None, who.resident_id, "id_number", "records-linker")]


async def test_the_visit_and_its_diagnosis_enter_the_residents_index(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await upload(client, app, world.hospital_id, "outpatient_diagnosis",
                 [diagnosis(GULOU, "d-1", hours_ago(clock, 2), "V9")])
    await link(database, clock, settings)
    rows = {row[2]: row for row in await timeline_rows(database)}
    assert set(rows) == {"v-1", "d-1"}
    assert rows["d-1"][4:9] == ("diagnosis", "visit", "V9", "P001", who.resident_id)
    assert rows["d-1"][10]["diagnosis_code"] == "I10"


async def test_a_diagnosis_that_arrives_before_its_visit_is_adopted_when_the_visit_arrives(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "outpatient_diagnosis",
                 [diagnosis(GULOU, "d-1", hours_ago(clock, 2), "V9")])
    await link(database, clock, settings)
    assert await residents_of_timeline(database) == {"d-1": None}
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    assert await residents_of_timeline(database) == {"d-1": who.resident_id, "v-1": who.resident_id}


async def test_records_indexed_before_their_patient_is_linked_follow_the_link(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await link(database, clock, settings)
    assert await residents_of_timeline(database) == {"v-1": who.resident_id}


async def test_an_id_number_the_index_does_not_know_is_kept_unlinked_and_reported(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001")])  # make_record's own valid number
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    counts = await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("unlinked", None, "id_number.not_in_index")
    assert counts.unlinked == 1
    assert await residents_of_timeline(database) == {"v-1": None}  # kept, tied to no one
    response = await client.get(f"{LINKAGE}/identities", params={"status": "unlinked"},
                                headers=await operator(app))
    assert response.status_code == 200, response.text
    assert [(row["patient_key"], row["reason"]) for row in response.json()] == [("P001", "id_number.not_in_index")]


async def test_an_id_number_under_another_surname_is_a_conflict_kept_not_linked(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who, name="李四")])
    await link(database, clock, settings)
    found = await link_of(database, world.hospital_id, "P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("unlinked", None, "id_number.conflict")
    async with database.transaction() as session:
        stored = await session.scalar(select(Record).where(Record.record_id == "m-1"))
    assert stored is not None
    assert stored.version == 1


async def test_the_link_table_holds_no_id_or_phone_number(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await link(database, clock, settings)
    text = repr(await timeline_rows(database)) + repr(await events_of(database, world.hospital_id, "P001"))
    async with database.transaction() as session:
        text += repr([vars(row) for row in (await session.scalars(select(PatientLink))).all()])
    assert who.id_number not in text
    assert "13812345678" not in text


async def test_an_amended_master_record_relinks_and_the_history_keeps_both(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    first = await person(database, settings, clock, 3)
    second = await person(database, settings, clock, 5)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", first)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", second, action=2)])
    await link(database, clock, settings)
    assert await residents_of_timeline(database) == {"v-1": second.resident_id}
    assert [event[:3] for event in await events_of(database, world.hospital_id, "P001")] == [
        ("linked", None, first.resident_id), ("linked", first.resident_id, second.resident_id)]


async def test_a_revoked_record_leaves_the_index(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9", action=3)])
    await link(database, clock, settings)
    assert await timeline_rows(database) == []


async def test_running_the_linker_again_changes_nothing(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await link(database, clock, settings)
    before = (await timeline_rows(database), await events_of(database, world.hospital_id, "P001"))
    again = await link(database, clock, settings)
    assert (again.indexed, again.linked) == (0, 0)  # re-read within the lag, nothing new
    assert (await timeline_rows(database), await events_of(database, world.hospital_id, "P001")) == before


async def test_the_linker_pages_through_the_records_and_keeps_its_cursor(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, f"v-{n}", hours_ago(clock, 2), f"P{n}", f"V{n}") for n in range(5)])
    counts = await link(database, clock, settings, page=2)
    assert (counts.read, counts.indexed) == (5, 5)
    async with database.transaction() as session:
        cursor = await session.get(LinkCursor, "timeline")
    assert cursor is not None
    assert cursor.record_id == "v-4"


async def test_rebuild_fills_the_same_index_from_the_stored_records(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 3), "P001", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 2), "P001", "V9")])
    await upload(client, app, world.hospital_id, "outpatient_diagnosis",
                 [diagnosis(GULOU, "d-1", hours_ago(clock, 2), "V9")])
    await link(database, clock, settings)
    before = await timeline_rows(database)
    rebuilt = await link(database, clock, settings, rebuild=True)
    assert rebuilt.indexed == 2
    assert await timeline_rows(database) == before
