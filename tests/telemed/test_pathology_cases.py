"""Pathology cases: a generic case routed to a pathology reading centre with its specimen and slide references
beside it; one case per hospital pathology number; reported through the generic report path."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories.registry import audit_events
from tests.telemed.pathology_support import PATHOLOGY, case_body, network, person, problem, submit
from tests.telemed.support import CASES, a_resident, centre, report_body, requester, step
from tests.telemed.support import submit as submit_ecg


async def test_a_case_is_routed_and_its_slides_are_seen_by_the_centre(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    doctor = await person(client, net.hospital.headers, net.hospital.organization_id, "doctor")
    case = await submit(client, net.hospital, requesting_doctor_id=doctor["id"])
    assert case["case"]["case_type"] == "pathology_case"
    assert case["case"]["centre_organization_id"] == net.centre.organization_id
    assert case["case"]["clinical_question"] == "胃镜见胃窦溃疡，请会诊"
    read = await client.get(f"{PATHOLOGY}/cases/{case['case']['id']}", headers=net.centre.headers)
    assert read.status_code == 200
    assert read.json()["pathology"] == {
        "requesting_doctor_id": doctor["id"],
        "specimen_site": "胃窦",
        "specimen_kind": "biopsy",
        "slide_count": 3,
        "block_count": 1,
        "slide_refs": ["wsi://hospital/P-1/1", "wsi://hospital/P-1/2"],
    }


async def test_a_read_of_a_pathology_case_is_audited_with_its_resident(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    net = await network(app)
    patient = await a_resident(app)
    case = await submit(client, net.hospital, resident_id=patient)
    assert (await client.get(f"{PATHOLOGY}/cases/{case['case']['id']}", headers=net.centre.headers)).status_code == 200
    events = await audit_events(app.state.database, resource_type="telemed_case", resident_id=patient)
    assert [e.action for e in events].count("read") == 1


async def test_the_same_submission_twice_is_one_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    body = case_body(external_id="P2022-0001")
    first = await client.post(f"{PATHOLOGY}/cases", json=body, headers=net.hospital.headers)
    again = await client.post(f"{PATHOLOGY}/cases", json=body, headers=net.hospital.headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["case"]["id"] == again.json()["case"]["id"]
    listed = await client.get(CASES, headers=net.hospital.headers)
    assert [c["external_id"] for c in listed.json()] == ["P2022-0001"]


async def test_the_same_number_with_other_slides_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    body = case_body(external_id="P2022-0002")
    assert (await client.post(f"{PATHOLOGY}/cases", json=body, headers=net.hospital.headers)).status_code == 200
    changed = await client.post(f"{PATHOLOGY}/cases", json=body | {"slide_count": 4}, headers=net.hospital.headers)
    assert problem(changed) == (409, "external_id", "P2022-0002", "telemed.pathology.same_submission")


async def test_more_slide_references_than_slides_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    refused = await client.post(
        f"{PATHOLOGY}/cases", json=case_body(slide_count=1), headers=net.hospital.headers
    )
    assert refused.status_code == 422
    assert "slide_refs" in refused.text


async def test_a_requesting_doctor_of_another_hospital_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    other = await requester(app, network="pathology")
    theirs = await person(client, other.headers, other.organization_id, "doctor")
    refused = await client.post(
        f"{PATHOLOGY}/cases", json=case_body(requesting_doctor_id=theirs["id"]), headers=net.hospital.headers
    )
    assert problem(refused) == (422, "requesting_doctor_id", theirs["id"], "telemed.pathology.case_doctor")
    assert (await client.get(CASES, headers=net.hospital.headers)).json() == []  # nothing half-written


async def test_a_case_of_another_network_is_not_a_pathology_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    await centre(app)
    ecg = await submit_ecg(client, side)
    refused = await client.get(f"{PATHOLOGY}/cases/{ecg['id']}", headers=side.headers)
    assert problem(refused) == (404, "case_id", ecg["id"], "telemed.pathology.case")


async def test_the_expert_reports_through_the_case_workflow(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    case_id = (await submit(client, net.hospital))["case"]["id"]
    assert (await step(client, net.centre.headers, case_id, "accept")).status_code == 200
    assert (await step(client, net.centre.headers, case_id, "claim")).status_code == 200
    signed = await client.post(
        f"{CASES}/{case_id}/report/sign",
        json=report_body(findings="胃窦黏膜慢性炎，局灶肠上皮化生", conclusion="慢性萎缩性胃炎"),
        headers=net.centre.headers,
    )
    assert signed.status_code == 200, signed.text
    seen = await client.get(f"{PATHOLOGY}/cases/{case_id}", headers=net.hospital.headers)
    assert seen.json()["case"]["status"] == "completed"
    assert seen.json()["case"]["report"]["conclusion"] == "慢性萎缩性胃炎"
