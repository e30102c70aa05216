"""Registers and follow-ups: entry by a centre, by a diagnosis and by a district platform's upload; follow-ups
classified and idempotent; impossible readings refused with nothing written."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.records import chronic
from cityhealth.records.chronic_models import ChronicFollowup, ChronicRegistration
from cityhealth.registry import service as registry
from cityhealth.registry.models import Organization
from tests.factories.registry import audit_events, count
from tests.records.family_support import (
    CHRONIC,
    FAMILY,
    centre,
    district_platform,
    doctor,
    id_number_of,
    package,
    resident,
    signing,
    stored,
    team,
)


def visit(day: str = "2022-06-10", sbp: int = 132, dbp: int = 84, **extra: Any) -> dict[str, Any]:
    return {"key": f"v-{day}", "visit_date": day, "sbp": sbp, "dbp": dbp} | extra


async def _registered(app: FastAPI, client: httpx.AsyncClient, program: str = "hypertension"
                      ) -> tuple[int, dict[str, str], dict[str, Any]]:
    chc = await centre(app)
    headers = await doctor(app, chc)
    response = await client.post(f"{CHRONIC}/registrations", headers=headers,
                                 json={"resident_id": await resident(app), "program": program,
                                       "registered_on": "2022-01-05"})
    assert response.status_code == 201
    return chc, headers, response.json()


async def test_a_centre_enters_a_resident_once_per_programme(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client)
    again = await client.post(f"{CHRONIC}/registrations", headers=headers,
                              json={"resident_id": registration["resident_id"], "program": "hypertension"})
    assert again.json() == registration
    assert (registration["source"], registration["next_due_on"]) == ("clinic", "2022-01-05")
    assert await count(app.state.database, ChronicRegistration) == 1


async def test_a_follow_up_with_systolic_not_above_diastolic_writes_nothing(app: FastAPI,
                                                                           client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client)
    response = await client.post(f"{CHRONIC}/registrations/{registration['id']}/followups", headers=headers,
                                 json=visit(sbp=85, dbp=90))
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"], response.json()["rule"]) == (
        "sbp", 85, "chronic.pressure.systolic_above_diastolic")
    assert await count(app.state.database, ChronicFollowup) == 0


async def test_a_follow_up_out_of_physiological_range_writes_nothing(app: FastAPI,
                                                                    client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client, "diabetes")
    response = await client.post(f"{CHRONIC}/registrations/{registration['id']}/followups", headers=headers,
                                 json=visit(fbg_mmol_l=72.0))
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["rule"]) == ("fbg_mmol_l", "chronic.fbg_mmol_l.range")
    assert (await stored(app, ChronicRegistration, registration["id"])).next_due_on == date(2022, 1, 5)
    assert await count(app.state.database, ChronicFollowup) == 0


async def test_two_uncontrolled_visits_in_a_row_are_referred(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client)
    url = f"{CHRONIC}/registrations/{registration['id']}/followups"
    first = await client.post(url, headers=headers, json=visit("2022-05-20", 152, 94))
    second = await client.post(url, headers=headers, json=visit("2022-06-03", 148, 92))
    assert [(r.json()["classification"], r.json()["next_step"], r.json()["due_on"]) for r in (first, second)] == [
        ("2", "recheck", "2022-06-03"), ("2", "refer", "2022-06-17")]
    detail = await client.get(f"{CHRONIC}/registrations/{registration['id']}", headers=headers)
    assert detail.json()["registration"]["next_due_on"] == "2022-06-17"


async def test_the_same_follow_up_again_is_one_follow_up(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client)
    url = f"{CHRONIC}/registrations/{registration['id']}/followups"
    first = await client.post(url, headers=headers, json=visit())
    again = await client.post(url, headers=headers, json=visit())
    changed = await client.post(url, headers=headers, json=visit(sbp=150))
    assert first.json() == again.json()
    assert changed.status_code == 409
    assert changed.json()["rule"] == "chronic.followup.same_key_same_visit"
    assert await count(app.state.database, ChronicFollowup) == 1


async def test_a_late_older_visit_leaves_the_due_date_of_the_latest(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers, registration = await _registered(app, client)
    url = f"{CHRONIC}/registrations/{registration['id']}/followups"
    await client.post(url, headers=headers, json=visit("2022-06-10"))
    await client.post(url, headers=headers, json=visit("2022-03-01", 160, 100))
    detail = await client.get(f"{CHRONIC}/registrations/{registration['id']}", headers=headers)
    assert detail.json()["registration"]["next_due_on"] == "2022-09-10"


async def test_another_centre_cannot_record_a_follow_up(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, _, registration = await _registered(app, client)
    stranger = await doctor(app, await centre(app))
    response = await client.post(f"{CHRONIC}/registrations/{registration['id']}/followups", headers=stranger,
                                 json=visit())
    assert response.status_code == 404


def upload(id_number: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"record_id": "HF-001", "program": "hypertension", "id_number": id_number, "organization_code": code,
            "visit_date": "2022-06-01", "sbp": 128, "dbp": 82} | extra


async def test_an_upload_enters_the_resident_found_by_id_number_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    person = await resident(app, seq=4242)
    headers = await district_platform(app, await centre(app, kind="district_platform"))
    body = upload(id_number_of(4242), (await stored(app, Organization, chc)).code)
    first = await client.post(f"{CHRONIC}/followup-uploads", headers=headers, json=body)
    again = await client.post(f"{CHRONIC}/followup-uploads", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["due_on"] == "2022-09-01"
    registration = await stored(app, ChronicRegistration, first.json()["registration_id"])
    assert (registration.resident_id, registration.source, registration.organization_id) == (
        person, "followup_upload", chc)
    assert await count(app.state.database, ChronicFollowup) == 1
    events = await audit_events(app.state.database, resource_type="chronic_followup")
    assert {event.resident_id for event in events} == {person}


async def test_an_upload_for_an_unknown_id_number_is_refused_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    headers = await district_platform(app, await centre(app, kind="district_platform"))
    response = await client.post(f"{CHRONIC}/followup-uploads", headers=headers,
                                 json=upload(id_number_of(999), (await stored(app, Organization, chc)).code))
    assert response.status_code == 422
    assert response.json()["rule"] == "chronic.upload.resident_unknown"
    assert response.json()["value"].count("*") == 8
    assert await count(app.state.database, ChronicRegistration) == 0


async def test_an_upload_with_impossible_readings_registers_no_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    await resident(app, seq=4343)
    headers = await district_platform(app, await centre(app, kind="district_platform"))
    body = upload(id_number_of(4343), (await stored(app, Organization, chc)).code, sbp=90, dbp=90)
    response = await client.post(f"{CHRONIC}/followup-uploads", headers=headers, json=body)
    assert response.status_code == 422
    assert response.json()["rule"] == "chronic.pressure.systolic_above_diastolic"
    assert await count(app.state.database, ChronicRegistration) == 0


async def test_a_linked_diagnosis_registers_with_the_contracted_centre(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, hospital = await centre(app), await centre(app, kind="hospital")
    person = await resident(app)
    signed = await client.post(f"{FAMILY}/contracts", headers=await doctor(app, chc),
                               json=signing([person], await team(app, chc), await package(app)))
    assert signed.status_code == 201
    cipher = registry.cipher_for(app.state.settings)
    async with app.state.database.transaction() as session:
        entered = await chronic.register_from_diagnosis(
            session, app.state.clock, cipher, resident_id=person, icd10_code="I10", diagnosed_on=date(2022, 6, 2),
            organization_id=hospital, record_ref="visit 88")
        other = await chronic.register_from_diagnosis(
            session, app.state.clock, cipher, resident_id=person, icd10_code="J18.900",
            diagnosed_on=date(2022, 6, 2), organization_id=hospital, record_ref="visit 89")
    assert entered is not None
    assert (entered.program, entered.source, entered.organization_id) == ("hypertension", "diagnosis", chc)
    assert other is None
