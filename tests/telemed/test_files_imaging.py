"""Imaging studies over HTTP, against a real PACS (Orthanc): found for a case (QIDO-RS), recorded with their
series and image counts, retrieved for a consultation (WADO-RS); a study the PACS does not have is a 404 naming
it, an unknown or unreachable PACS and a malformed UID are refused naming them, nothing kept."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from pydicom.uid import generate_uid

from cityhealth.telemed.dicomweb import split_multipart
from tests.telemed.ecg_files import image_instance
from tests.telemed.files_support import CaseWorld, case_world, studies_kept, with_pacs
from tests.telemed.orthanc import orthanc  # noqa: F401 - the session's PACS
from tests.telemed.support import CASES, submit


@dataclass(frozen=True)
class Stored:
    uid: str
    patient_id: str


@pytest.fixture
def stored(orthanc: str) -> Stored:  # noqa: F811 - the fixture imported above
    """Three tiny images in two series of a new study, stored in Orthanc through its REST API."""
    uid, patient_id, accession = generate_uid(), f"P{generate_uid()[-10:]}", generate_uid()[-12:]
    series = [generate_uid(), generate_uid()]
    for number, series_uid in enumerate([series[0], series[0], series[1]], start=1):
        _, data = image_instance(uid, series_uid, number=number, patient_id=patient_id, accession=accession)
        response = httpx.post(f"{orthanc}/instances", content=data, headers={"Content-Type": "application/dicom"})
        assert response.status_code == 200, response.text
    return Stored(uid, patient_id)


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, orthanc: str) -> CaseWorld:  # noqa: F811
    with_pacs(app, orthanc=f"{orthanc}/dicom-web")
    return await case_world(app, client, case_type="ecg")


async def test_a_study_is_found_recorded_counted_and_retrieved_for_the_case(
    client: httpx.AsyncClient, world: CaseWorld, stored: Stored
) -> None:
    found = await client.get(
        world.imaging("/search"), params={"pacs": "orthanc", "patient_id": stored.patient_id},
        headers=world.requester.headers,
    )
    assert found.status_code == 200, found.text
    assert [item["study_instance_uid"] for item in found.json()] == [stored.uid]
    assert found.json()[0]["patient_id_masked"].endswith(stored.patient_id[-4:])
    assert stored.patient_id not in found.text
    body = {"pacs": "orthanc", "study_instance_uid": stored.uid}
    recorded = await client.post(world.imaging(), json=body, headers=world.requester.headers)
    assert recorded.status_code == 200, recorded.text
    study = recorded.json()
    assert (study["case_id"], study["series_count"], study["image_count"]) == (world.case_id, 2, 3)
    shown = await client.get(world.imaging(f"/{study['id']}"), headers=world.centre.headers)
    assert (shown.status_code, shown.json()["image_count"]) == (200, 3)
    listed = await client.get(world.imaging(), headers=world.centre.headers)
    assert [(item["id"], item["series_count"]) for item in listed.json()] == [(study["id"], 2)]
    again = await client.post(world.imaging(), json=body, headers=world.centre.headers)
    assert again.json()["id"] == study["id"]
    retrieved = await client.get(world.imaging(f"/{study['id']}/instances"), headers=world.centre.headers)
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.headers["x-instance-count"] == "3"
    parts = split_multipart(retrieved.content, retrieved.headers["content-type"])
    assert len(parts) == 3
    assert all(part[128:132] == b"DICM" for part in parts)


async def test_a_study_the_pacs_does_not_have_is_not_found_naming_it(
    app: FastAPI, client: httpx.AsyncClient, world: CaseWorld
) -> None:
    missing = generate_uid()
    refused = await client.post(
        world.imaging(), json={"pacs": "orthanc", "study_instance_uid": missing}, headers=world.requester.headers
    )
    assert refused.status_code == 404, refused.text
    problem = refused.json()
    assert (problem["code"], problem["field"], problem["value"]) == ("study_not_found", "study_instance_uid", missing)
    assert missing in problem["detail"]
    assert "orthanc" in problem["detail"]
    assert await studies_kept(app) == 0


async def test_another_centre_finds_neither_the_case_nor_its_study(
    app: FastAPI, client: httpx.AsyncClient, world: CaseWorld, stored: Stored
) -> None:
    body = {"pacs": "orthanc", "study_instance_uid": stored.uid}
    study_id = (await client.post(world.imaging(), json=body, headers=world.centre.headers)).json()["id"]
    for url in (world.imaging(), world.imaging(f"/{study_id}"), world.imaging(f"/{study_id}/instances")):
        response = await client.get(url, headers=world.other_centre.headers)
        assert (response.status_code, response.json()["field"]) == (404, "case_id"), url
    assert (await client.post(world.imaging(), json=body, headers=world.other_centre.headers)).status_code == 404
    second = (await submit(client, world.requester))["id"]
    elsewhere = await client.get(f"{CASES}/{second}/imaging/{study_id}", headers=world.requester.headers)
    assert (elsewhere.status_code, elsewhere.json()["field"]) == (404, "study_id")
    moved = await client.post(f"{CASES}/{second}/imaging", json=body, headers=world.requester.headers)
    assert (moved.status_code, moved.json()["rule"]) == (409, "telemed.study.one_case")
    assert await studies_kept(app) == 1
