"""The reading pages over HTTP (no browser): the centre's queue with due and overdue cases, the case with its
ECG, accept, claim, draft and sign through the forms; a claim lost to another doctor, a stale form, another
centre's doctor and the pages' guards; the requester's cases and the report that came back."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.factories.booking import add_resident
from tests.telemed.files_support import watch_drawings
from tests.telemed.lab_support import oru, wire
from tests.telemed.support import CASES, doctor
from tests.web.pages_support import rows_of
from tests.web.telemed_support import form_values, reading_world, signed_in

from cityhealth.registry.protection import cipher_for
from cityhealth.security.models import AuditEvent
from cityhealth.telemed import imaging_repository as imaging_rows
from cityhealth.telemed import lab_service
from cityhealth.web.telemed_worklist import CASE_HELD, NOT_FOUND, STALE_FORM

WORKLIST = "/telemed/worklist"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _case_reads(app: FastAPI, case_id: int) -> list[str]:
    async with app.state.database.transaction() as session:
        found = await session.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.resource_type == "telemed_case", AuditEvent.action == "read",
                AuditEvent.resource_id == str(case_id),
            )
        )
        return list(found)


async def test_a_doctor_takes_a_case_from_the_queue_to_a_signed_report(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client)
    signed_in(client, world.centre.headers)
    queue = await client.get(WORKLIST)
    assert queue.status_code == 200
    assert f'id="case-{world.case_id}"' in queue.text
    assert "加急" in queue.text
    assert "未到期" in queue.text
    url = f"{WORKLIST}/cases/{world.case_id}"
    page = await client.get(url)
    assert page.status_code == 200
    assert "胸闷三天" in page.text
    assert f'src="{url}/ecg/{world.tracing_id}/svg"' in page.text
    assert "12 导联" in page.text
    drawn = await client.get(f"{url}/ecg/{world.tracing_id}/svg")
    assert (drawn.status_code, drawn.headers["content-type"]) == (200, "image/svg+xml")
    for step, status in (("accept", "待认领"), ("claim", "判读中")):
        taken = await client.post(f"{url}/{step}", data=form_values(page.text, f"{url}/{step}"))
        assert taken.status_code == 303, taken.text
        page = await client.get(taken.headers["location"])
        assert status in page.text
    report = {"findings": "窦性心律，ST段未见明显异常", "conclusion": "正常心电图"}
    drafted = await client.post(f"{url}/draft", data=form_values(page.text, f"{url}/draft") | report)
    assert drafted.status_code == 303
    page = await client.get(drafted.headers["location"])
    assert "报告草稿已保存" in page.text
    assert "窦性心律，ST段未见明显异常</textarea>" in page.text
    signed = await client.post(f"{url}/sign", data=form_values(page.text, f"{url}/draft") | report)
    assert signed.status_code == 303
    page = await client.get(signed.headers["location"])
    assert "报告已签发" in page.text
    assert "已完成" in page.text
    detail = (await client.get(f"{CASES}/{world.case_id}", headers=world.hospital.headers)).json()
    assert (detail["status"], detail["report"]["conclusion"]) == ("completed", "正常心电图")
    assert len(await _case_reads(app, world.case_id)) >= 4  # every view of the case page is audited


async def test_the_queue_marks_a_case_past_its_turnaround_target(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client, priority="stat")
    app.state.clock.advance(timedelta(minutes=16))  # the ECG network's stat target is 15 minutes
    signed_in(client, await doctor(app, world.centre.organization_id))  # a login after the clock moved
    queue = await client.get(WORKLIST)
    assert 'class="priority-stat overdue"' in queue.text
    assert "已超期" in queue.text
    assert '<strong class="overdue-count">1</strong>' in queue.text


async def test_a_claim_lost_to_another_doctor_shows_why(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client)
    url = f"{WORKLIST}/cases/{world.case_id}"
    accepted = await client.post(f"{CASES}/{world.case_id}/accept", json={"request_key": "a1"},
                                 headers=world.centre.headers)
    assert accepted.status_code == 200
    signed_in(client, world.second_doctor)
    seen = await client.get(url)  # the claim button is there while the case is free
    assert f'action="{url}/claim"' in seen.text
    first = await client.post(f"{CASES}/{world.case_id}/claim", json={"request_key": "c1"},
                              headers=world.centre.headers)
    assert first.status_code == 200
    lost = await client.post(f"{url}/claim", data=form_values(seen.text, f"{url}/claim"))
    assert lost.status_code == 409
    assert CASE_HELD in lost.text
    assert "其他医生" in lost.text
    assert f'action="{url}/claim"' not in lost.text
    refused = await client.post(f"{url}/draft", data=form_values(seen.text, f"{url}/claim")
                                | {"findings": "x", "conclusion": "y"})
    assert (refused.status_code, CASE_HELD in refused.text) == (409, True)


async def test_a_stale_form_and_an_empty_report_change_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client)
    url = f"{WORKLIST}/cases/{world.case_id}"
    signed_in(client, world.centre.headers)
    page = await client.get(url)
    stale = await client.post(f"{url}/accept", data={"csrf_token": "forged", "request_key": "k1"})
    assert (stale.status_code, STALE_FORM in stale.text) == (403, True)
    detail = await client.get(f"{CASES}/{world.case_id}", headers=world.hospital.headers)
    assert detail.json()["status"] == "requested"
    await client.post(f"{url}/accept", data=form_values(page.text, f"{url}/accept"))
    page = await client.get(url)
    await client.post(f"{url}/claim", data=form_values(page.text, f"{url}/claim"))
    page = await client.get(url)
    empty = await client.post(f"{url}/sign", data=form_values(page.text, f"{url}/draft")
                              | {"findings": "  ", "conclusion": "正常心电图"})
    assert empty.status_code == 422
    assert "所见" in empty.text
    unknown = await client.post(f"{url}/delete", data=form_values(page.text, f"{url}/draft"))
    assert unknown.status_code == 422
    detail = await client.get(f"{CASES}/{world.case_id}", headers=world.hospital.headers)
    assert (detail.json()["status"], detail.json()["report"]) == ("in-progress", None)


async def test_another_centres_doctor_finds_no_such_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client)
    url = f"{WORKLIST}/cases/{world.case_id}"
    signed_in(client, world.other_centre.headers)
    queue = await client.get(WORKLIST)
    assert f'id="case-{world.case_id}"' not in queue.text
    token = CSRF.search(queue.text)  # the session's own form token (the bar's sign-out form carries it)
    assert token is not None
    for path in (url, f"{url}/ecg/{world.tracing_id}/svg"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "胸闷" not in response.text
    shown = await client.get(url)
    assert NOT_FOUND in shown.text
    for step in ("accept", "claim"):
        refused = await client.post(f"{url}/{step}", data={"csrf_token": token.group(1), "request_key": f"x-{step}"})
        assert (refused.status_code, NOT_FOUND in refused.text) == (404, True)
    detail = await client.get(f"{CASES}/{world.case_id}", headers=world.hospital.headers)
    assert detail.json()["status"] == "requested"


async def test_the_pages_draw_a_tracing_off_the_event_loop_once_its_reading_has_committed(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await reading_world(app, client)
    drawings = watch_drawings(app, monkeypatch)
    for headers, base in ((world.centre.headers, WORKLIST), (world.requester_doctor, "/telemed/requests")):
        signed_in(client, headers)
        drawn = await client.get(f"{base}/cases/{world.case_id}/ecg/{world.tracing_id}/svg")
        assert drawn.status_code == 200, drawn.text
    assert drawings == [(True, 1), (True, 2)]  # in a thread, each reading's audit event already committed


async def test_the_requester_sees_its_cases_and_the_report_only_once_signed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await reading_world(app, client)
    for step in ("accept", "claim"):
        await client.post(f"{CASES}/{world.case_id}/{step}", json={"request_key": step}, headers=world.centre.headers)
    draft = {"request_key": "d1", "findings": "草稿所见", "conclusion": "草稿结论"}
    await client.put(f"{CASES}/{world.case_id}/report", json=draft, headers=world.centre.headers)
    signed_in(client, world.requester_doctor)
    listed = await client.get("/telemed/requests")
    assert listed.status_code == 200
    assert f'id="case-{world.case_id}"' in listed.text
    url = f"/telemed/requests/cases/{world.case_id}"
    page = await client.get(url)
    assert page.status_code == 200
    assert "草稿结论" not in page.text
    assert "报告尚未签发" in page.text
    assert f'src="{url}/ecg/{world.tracing_id}/svg"' in page.text
    assert (await client.get(f"{url}/ecg/{world.tracing_id}/svg")).status_code == 200
    sign = {"request_key": "s1", "findings": "窦性心律", "conclusion": "正常心电图"}
    await client.post(f"{CASES}/{world.case_id}/report/sign", json=sign, headers=world.centre.headers)
    page = await client.get(url)
    assert "正常心电图" in page.text
    assert "已签发" in page.text
    assert 'action="' not in page.text.split("<main>", 1)[1]  # a requester has no step to take here


async def test_each_page_needs_its_own_scope_and_a_login(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = await reading_world(app, client)
    anonymous = await client.get(WORKLIST)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login?next=/telemed/worklist")
    signed_in(client, world.requester_doctor)
    assert (await client.get(WORKLIST)).status_code == 403
    assert (await client.get(f"{WORKLIST}/cases/{world.case_id}")).status_code == 403
    signed_in(client, world.centre.headers)
    assert (await client.get("/telemed/requests")).status_code == 403
    assert (await client.get(f"/telemed/requests/cases/{world.case_id}")).status_code == 403
    signed_in(client, world.hospital.headers)  # a machine client's token is no browser login
    assert (await client.get("/telemed/requests")).status_code == 303


async def _lab_result_of(app: FastAPI, id_number: str) -> None:
    """A blood count for the resident with this ID number, received from a lab as over MLLP."""
    received = lab_service.receive(wire(oru("LAB-1", [(id_number, "", "", "", "ID")])), app.state.clock)
    async with app.state.database.transaction() as session:
        await lab_service.ingest(session, app.state.clock, cipher_for(app.state.settings), [received])


async def _study_for(app: FastAPI, case_id: int) -> None:
    now = app.state.clock.now()
    async with app.state.database.transaction() as session:
        await imaging_rows.upsert_study(session, {
            "study_instance_uid": "1.2.826.0.1.3680043.8.498.77", "pacs": "city-pacs", "case_id": case_id,
            "accession_number": "ACC77", "modalities": "CT", "description": "Chest CT", "study_date": None,
            "series_count": 2, "image_count": 3, "counted_at": now, "patient_id_hash": None, "patient_id_enc": None,
            "patient_name_enc": None, "created_at": now, "updated_at": now})


async def test_the_case_shows_its_residents_lab_results_and_its_studies(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    resident_id, id_number = await add_resident(app.state.database, app.state.settings, app.state.clock.now(), 5)
    await _lab_result_of(app, id_number)
    world = await reading_world(app, client, resident_id=resident_id)
    await _study_for(app, world.case_id)
    for headers, url in ((world.centre.headers, f"{WORKLIST}/cases/{world.case_id}"),
                         (world.requester_doctor, f"/telemed/requests/cases/{world.case_id}")):
        signed_in(client, headers)
        page = await client.get(url)
        assert page.status_code == 200
        labs = rows_of(page.text, "lab-results")
        assert [row[:6] for row in labs] == [["血常规", "葡萄糖", "5.4", "mmol/L", "3.9-6.1", "N"],
                                              ["血常规", "血红蛋白", "98", "g/L", "115-150", "L"]]
        studies = rows_of(page.text, "imaging-studies")
        assert [(row[1], row[4], row[5]) for row in studies] == [("CT", "2", "3")]
        assert id_number not in page.text
    async with app.state.database.transaction() as session:
        reads = await session.scalars(select(AuditEvent.resident_id).where(
            AuditEvent.resource_type == "telemed_lab_report", AuditEvent.action == "read"))
        assert list(reads) == [resident_id, resident_id]
