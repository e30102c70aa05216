"""The imaging routes' refusals that need no PACS to answer: an unknown PACS name, a malformed UID, a PACS that
cannot be reached, a missing criterion — each named, nothing kept."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.telemed.files_support import case_world, studies_kept, with_pacs
from tests.telemed.pacs_stub import stub_pacs_root

UID = "1.2.826.0.1.3680043.8.498.1"


@pytest.mark.parametrize(
    ("body", "status", "field", "rule"),
    [
        ({"pacs": "nowhere", "study_instance_uid": UID}, 422, "pacs", "telemed.pacs.known"),
        ({"pacs": "stub", "study_instance_uid": "1.2.abc"}, 422, "study_instance_uid", "dicom_uid"),
        ({"pacs": "stub", "study_instance_uid": "1." * 34 + "1"}, 422, "study_instance_uid", "dicom_uid"),
        ({"pacs": "down", "study_instance_uid": UID}, 502, "pacs", "pacs_reachable"),
        ({"pacs": "stub", "study_instance_uid": UID, "case": 1}, 422, "case", None),
    ],
    ids=["unknown-pacs", "uid-letters", "uid-too-long", "pacs-down", "extra-field"],
)
async def test_a_study_that_cannot_be_recorded_is_refused_naming_why(
    app: FastAPI, client: httpx.AsyncClient, body: dict[str, object], status: int, field: str, rule: str | None
) -> None:
    with_pacs(app, stub=stub_pacs_root(), down="http://127.0.0.1:9/dicom-web")
    world = await case_world(app, client)
    refused = await client.post(world.imaging(), json=body, headers=world.requester.headers)
    assert refused.status_code == status, refused.text
    problem = refused.json()
    if rule is not None:
        assert (problem["field"], problem["rule"]) == (field, rule)
    else:
        assert [error["field"].split(".")[-1] for error in problem["errors"]] == [field]
    assert await studies_kept(app) == 0


async def test_a_search_names_a_criterion_and_a_known_pacs(app: FastAPI, client: httpx.AsyncClient) -> None:
    with_pacs(app, stub=stub_pacs_root())
    world = await case_world(app, client)
    bare = await client.get(world.imaging("/search"), params={"pacs": "stub"}, headers=world.centre.headers)
    assert (bare.status_code, bare.json()["rule"]) == (422, "search_criterion")
    unknown = await client.get(
        world.imaging("/search"), params={"pacs": "other", "patient_id": "P1"}, headers=world.centre.headers
    )
    assert (unknown.status_code, unknown.json()["field"]) == (422, "pacs")
    empty = await client.get(
        world.imaging("/search"), params={"pacs": "stub", "patient_id": "P1"}, headers=world.centre.headers
    )
    assert (empty.status_code, empty.json()) == (200, [])
    stranger = await client.get(
        world.imaging("/search"), params={"pacs": "stub", "patient_id": "P1"}, headers=world.other_centre.headers
    )
    assert stranger.status_code == 404
