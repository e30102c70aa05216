"""The shared record as a clinician opens it: the first page (masked identity, health flags), the encounters of
every hospital newest first and paged, and the public-health record — all from the index, linked by the linker."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import mask_resident_id
from tests.factories.booking import World
from tests.factories.collection import add_organization, make_record
from tests.records.support import (
    RECORDS,
    clinician,
    diagnosis,
    hours_ago,
    link,
    master,
    person,
    resident_headers,
    upload,
    visit,
)

GULOU, CHILD = "H-GULOU", "H-CHILD"


async def _consented(client: httpx.AsyncClient, app: FastAPI, resident_id: int, organization_id: int) -> None:
    response = await client.post(f"{RECORDS}/me/consents", headers=await resident_headers(app, resident_id),
                                 json={"organization_id": organization_id, "days": 7})
    assert response.status_code == 201, response.text


async def test_the_timeline_joins_every_hospital_newest_first(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 100), "G-7", who)])
    await upload(client, app, world.other_hospital_id, "patient_master_index",
                 [master(CHILD, "m-1", hours_ago(clock, 100), "C-3", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 50), "G-7", "V1")])
    await upload(client, app, world.other_hospital_id, "outpatient_visit",
                 [visit(CHILD, "v-1", hours_ago(clock, 30), "C-3", "V1")])
    await upload(client, app, world.hospital_id, "outpatient_diagnosis",
                 [diagnosis(GULOU, "d-1", hours_ago(clock, 49), "V1")])
    await link(database, clock, settings)
    await _consented(client, app, who.resident_id, world.hospital_id)
    response = await client.get(f"{RECORDS}/residents/{who.resident_id}",
                                headers=await clinician(app, world.hospital_id))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(item["organization_name"], item["category"]) for item in body["timeline"]] == [
        ("南京市儿童医院", "visit"), ("南京鼓楼医院", "diagnosis"), ("南京鼓楼医院", "visit")]
    assert body["linked_identities"] == 2
    assert body["resident"]["id_number_masked"] == mask_resident_id(who.id_number)
    assert body["flags"]["hypertension"] is True  # the I10 diagnosis
    assert who.id_number not in response.text


async def test_the_timeline_is_paged_with_the_token_it_gives(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 100), "G-7", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, f"v-{n}", hours_ago(clock, 10 + n), "G-7", f"V{n}") for n in range(5)])
    await link(database, clock, settings)
    await _consented(client, app, who.resident_id, world.hospital_id)
    headers = await clinician(app, world.hospital_id)
    seen: list[str] = []
    before = None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = (await client.get(f"{RECORDS}/residents/{who.resident_id}", headers=headers, params=params)).json()
        seen += [item["record_id"] for item in page["timeline"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ["v-0", "v-1", "v-2", "v-3", "v-4"]


async def test_a_broken_page_token_is_malformed(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    await _consented(client, app, who.resident_id, world.hospital_id)
    response = await client.get(f"{RECORDS}/residents/{who.resident_id}", params={"before": "not-a-token"},
                                headers=await clinician(app, world.hospital_id))
    assert response.status_code == 422, response.text
    assert (response.json()["field"], response.json()["rule"]) == ("before", "page.cursor")


async def test_the_public_health_record_and_its_follow_ups_link_through_the_health_record_number(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    district = await add_organization(database, clock, "D320115", kind="district_platform", area_code="320115")
    number = "32011500100100042"
    await upload(client, app, district.id, "health_record", [make_record(
        "health_record", "D320115", "hr-1", hours_ago(clock, 400), record_no=number, name=who.name,
        id_number=who.id_number, sex_code=str(who.sex), sex_name="男" if who.sex == 1 else "女",
        birth_date=who.birth)])
    await upload(client, app, district.id, "hypertension_followup", [make_record(
        "hypertension_followup", "D320115", "f-1", hours_ago(clock, 48), health_record_no=number, sbp=150, dbp=95,
        classification_code="2", classification_name="控制不满意")])
    await link(database, clock, settings)
    await _consented(client, app, who.resident_id, world.hospital_id)
    body = (await client.get(f"{RECORDS}/residents/{who.resident_id}",
                             headers=await clinician(app, world.hospital_id))).json()
    assert [item["category"] for item in body["public_health"]] == ["hypertension_followup", "health_record"]
    assert body["flags"]["hypertension"] is True
    assert body["flags"]["last_blood_pressure"] == "150/95"
    assert body["timeline"] == []


async def test_the_blood_group_comes_from_the_latest_discharge(
        app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    who = await person(database, settings, clock, 3)
    admitted = hours_ago(clock, 200)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", admitted - timedelta(hours=1), "G-7", who)])
    await upload(client, app, world.hospital_id, "admission", [make_record(
        "admission", GULOU, "a-1", admitted, patient_id="G-7", admission_no="A1")])
    await upload(client, app, world.hospital_id, "discharge", [make_record(
        "discharge", GULOU, "x-1", hours_ago(clock, 100), admission_no="A1",
        admission_time=make_record("admission", GULOU, "a-1", admitted)["admission_time"])])
    await link(database, clock, settings)
    await _consented(client, app, who.resident_id, world.hospital_id)
    body = (await client.get(f"{RECORDS}/residents/{who.resident_id}",
                             headers=await clinician(app, world.hospital_id))).json()
    assert body["flags"]["blood_group"] == "A 阳性"
    assert [item["category"] for item in body["timeline"]] == ["discharge", "admission"]
