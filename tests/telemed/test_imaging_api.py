"""Imaging over the API: a member records a study from a configured PACS (its images counted there, never
stored) and reports it; an unknown PACS and another organization's report are refused, naming why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.simulation.pacs import PACS_NAME, SimulatedPacs, Study
from tests.telemed.support import requester

STUDIES = "/api/telemed/imaging/studies"


@pytest.fixture
async def pacs(app: FastAPI) -> AsyncIterator[SimulatedPacs]:
    """A DICOMweb archive on loopback, configured into the platform under PACS_NAME."""
    async with SimulatedPacs() as archive:
        app.state.settings = app.state.settings.model_copy(update={"telemed_pacs": {PACS_NAME: archive.root}})
        yield archive


async def test_a_study_is_recorded_with_its_images_counted_and_its_report_signed_by_the_recorder(
    app: FastAPI, client: httpx.AsyncClient, pacs: SimulatedPacs
) -> None:
    pacs.add(Study("1.2.156.9.1", "A0001", "P0001", "CT", date(2022, 6, 3), 620))
    member = await requester(app, network="imaging")
    recorded = await client.post(STUDIES, headers=member.headers,
                                 json={"pacs": PACS_NAME, "study_instance_uid": "1.2.156.9.1"})
    assert recorded.status_code == 200, recorded.text
    assert (recorded.json()["image_count"], recorded.json()["series_count"]) == (620, 3)
    again = await client.post(STUDIES, headers=member.headers,
                              json={"pacs": PACS_NAME, "study_instance_uid": "1.2.156.9.1"})
    assert again.json()["id"] == recorded.json()["id"]  # recorded once
    signed = await client.put(f"{STUDIES}/{recorded.json()['id']}/report", headers=member.headers,
                              json={"findings": "未见异常", "impression": "正常", "sign": True})
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "final"


async def test_a_pacs_the_platform_does_not_know_is_refused_naming_it(
    app: FastAPI, client: httpx.AsyncClient, pacs: SimulatedPacs
) -> None:
    member = await requester(app, network="imaging")
    refused = await client.post(STUDIES, headers=member.headers,
                                json={"pacs": "elsewhere", "study_instance_uid": "1.2.156.9.2"})
    assert refused.status_code == 422
    assert (refused.json()["field"], refused.json()["value"], refused.json()["rule"]) == (
        "pacs", "elsewhere", "telemed.pacs.known")


async def test_only_the_organization_that_recorded_a_study_reports_it(
    app: FastAPI, client: httpx.AsyncClient, pacs: SimulatedPacs
) -> None:
    pacs.add(Study("1.2.156.9.3", "A0003", "P0003", "DX", date(2022, 6, 3), 2))
    recorder = await requester(app, network="imaging")
    other = await requester(app, network="imaging", area_code="320106")
    recorded = await client.post(STUDIES, headers=recorder.headers,
                                 json={"pacs": PACS_NAME, "study_instance_uid": "1.2.156.9.3"})
    assert recorded.status_code == 200, recorded.text
    refused = await client.put(f"{STUDIES}/{recorded.json()['id']}/report", headers=other.headers,
                               json={"findings": "未见异常", "impression": "正常", "sign": True})
    assert refused.status_code == 403
    assert (refused.json()["field"], refused.json()["rule"]) == ("study_id", "telemed.imaging.report_by_recorder")


async def test_a_study_is_put_under_a_case_only_through_the_case_s_route(
    app: FastAPI, client: httpx.AsyncClient, pacs: SimulatedPacs
) -> None:
    # This route once took a case_id and attached the study to any existing case, past the case's object rule.
    pacs.add(Study("1.2.156.9.4", "A0004", "P0004", "CT", date(2022, 6, 3), 8))
    member = await requester(app, network="imaging")
    refused = await client.post(STUDIES, headers=member.headers,
                                json={"pacs": PACS_NAME, "study_instance_uid": "1.2.156.9.4", "case_id": 1})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"].endswith("case_id")
