"""The resident app's record pages: my record (first page and timeline), my results, who opened my record."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.booking import World
from tests.factories.collection import make_record
from tests.records.support import RECORDS, Person, clinician, hours_ago, link, master, person, upload, visit
from tests.web.app_support import app_sign_in
from tests.web.conftest import RESIDENT_PASSWORD
from tests.web.pages_support import audit_events

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database

GULOU = "H-GULOU"
PHONE = "13900007777"


async def _signed_in(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                     seq: int, phone: str) -> Person:
    who = await person(database, settings, clock, seq)
    response = await client.post("/api/auth/residents/register", json={
        "id_number": who.id_number, "name": who.name, "phone": phone, "password": RESIDENT_PASSWORD})
    assert response.status_code == 201, response.text
    assert (await app_sign_in(client, database, settings, clock, phone)).status_code == 303
    return who


@pytest.fixture
async def who(client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
              clock: SimulatedClock, world: World) -> Person:
    """A signed-in resident whose hospital uploaded a visit, a lab report and an exam report, linked."""
    who = await _signed_in(client, database, settings, clock, 3, PHONE)
    await upload(client, app, world.hospital_id, "patient_master_index",
                 [master(GULOU, "m-1", hours_ago(clock, 100), "G-7", who)])
    await upload(client, app, world.hospital_id, "outpatient_visit",
                 [visit(GULOU, "v-1", hours_ago(clock, 50), "G-7", "V1", dept_name="心内科")])
    await upload(client, app, world.hospital_id, "lab_report",
                 [make_record("lab_report", GULOU, "l-1", hours_ago(clock, 48), visit_no="V1")])
    await upload(client, app, world.hospital_id, "exam_report",
                 [make_record("exam_report", GULOU, "e-1", hours_ago(clock, 47), visit_no="V1")])
    await link(database, clock, settings)
    return who


async def test_my_record_shows_the_first_page_masked_and_the_timeline(
        client: httpx.AsyncClient, database: Database, who: Person) -> None:
    response = await client.get("/app/record")
    assert response.status_code == 200
    assert f"{who.name[0]}{'*' * (len(who.name) - 1)}" in response.text
    assert who.name not in response.text
    assert who.id_number not in response.text
    assert "关联医院档案</dt><dd>1 份" in response.text
    assert response.text.index("检查报告") < response.text.index("检验报告") < response.text.index("门诊就诊")
    assert "南京鼓楼医院 · 心内科" in response.text
    reads = await audit_events(database, resource_type="shared_record", action="read")
    assert [e.resident_id for e in reads] == [who.resident_id]


async def test_reading_my_own_record_is_not_an_opening_in_my_access_log(
        client: httpx.AsyncClient, who: Person) -> None:
    await client.get("/app/record")
    log = await client.get("/app/access-log")
    assert "还没有医生调阅过您的健康档案" in log.text


async def test_my_results_show_the_lab_items_and_the_exam_conclusion(
        client: httpx.AsyncClient, database: Database, who: Person) -> None:
    response = await client.get("/app/results")
    assert response.status_code == 200
    assert "葡萄糖" in response.text
    assert "5.6 mmol/L" in response.text
    assert "结论：胸部CT平扫未见明显异常" in response.text
    listed = await audit_events(database, resource_type="shared_record", action="list")
    assert [e.resident_id for e in listed] == [who.resident_id]


async def test_who_opened_my_record_lists_a_clinicians_opening_on_my_consent(
        client: httpx.AsyncClient, app: FastAPI, world: World, who: Person) -> None:
    from tests.records.support import resident_headers

    consent = await client.post(f"{RECORDS}/me/consents", headers=await resident_headers(app, who.resident_id),
                                json={"organization_id": world.hospital_id, "days": 7})
    assert consent.status_code == 201, consent.text
    opened = await client.get(f"{RECORDS}/residents/{who.resident_id}", headers=await clinician(app, world.hospital_id))
    assert opened.status_code == 200, opened.text
    response = await client.get("/app/access-log")
    assert response.status_code == 200
    assert "南京鼓楼医院" in response.text
    assert "您的授权" in response.text


async def test_another_residents_record_never_shows(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        who: Person) -> None:
    client.cookies.clear()
    await _signed_in(client, database, settings, clock, 4, "13900008888")
    record = await client.get("/app/record")
    assert "暂无就诊记录" in record.text
    results = await client.get("/app/results")
    assert "暂无检查检验报告" in results.text


async def test_a_forged_page_token_is_refused(client: httpx.AsyncClient, who: Person) -> None:
    response = await client.get("/app/record", params={"before": "not-a-token"})
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["/app/record", "/app/results", "/app/access-log"])
async def test_each_record_page_sends_a_visitor_to_the_phone_sign_in(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/app/login?next={path}"
