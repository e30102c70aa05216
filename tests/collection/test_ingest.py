"""Ingest's rejected rows: whatever field a sender puts a personal number in, it is answered and kept masked."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.ingest import masked_row
from cityhealth.collection.models import JobRejection
from cityhealth.collection.standard import load_standard
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from tests.collection.conftest import Unit, post_records, wait_for_job
from tests.factories.collection import ALL_FORMS, REALTIME_FORMS, make_record

ID_NUMBER = make_resident_id("320102", date(1985, 4, 12), 37)
MOBILE = "13912345678"
LEGACY_ID = "320102850412037"
PLANTED = f"{ID_NUMBER} {MOBILE} {LEGACY_ID}"


def planted_everywhere(unit: Unit, clock: SimulatedClock, form: str) -> list[dict[str, Any]]:
    """One record per field of the form (but the sender's own code), that field holding the three numbers;
    every record also carries an unknown action, so that each one is rejected and kept."""
    at = clock.now() - timedelta(hours=1)
    fields = [spec.name for spec in load_standard().forms[form].fields if spec.name != "org_code"]
    return [{**make_record(form, unit.code, f"{form}-{n}", at, action=9), name: PLANTED}
            for n, name in enumerate(fields)]


def assert_no_whole_number(text: str) -> None:
    for number in (ID_NUMBER, MOBILE, LEGACY_ID):
        assert number not in text


def test_a_rejected_row_keeps_its_named_fields_masked_and_every_other_value_scrubbed() -> None:
    row = masked_row({"id_number": "12345", "phone": 13912345678, "marital_name": f"手机{MOBILE}",
                      "diagnoses": [{"note": ID_NUMBER}], "visits": 3})
    assert row == {"id_number": "*****", "phone": "***", "marital_name": f"手机{mask_phone(MOBILE)}",
                   "diagnoses": [{"note": mask_resident_id(ID_NUMBER)}], "visits": 3}


async def test_numbers_in_every_field_of_every_real_time_form_are_answered_masked(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    for form in REALTIME_FORMS:
        records = planted_everywhere(hospital, clock, form)
        response = await post_records(client, hospital, form, records)
        assert response.status_code == 200, response.text
        assert [outcome["status"] for outcome in response.json()["records"]] == ["rejected"] * len(records)
        assert_no_whole_number(response.text)


async def test_numbers_in_every_field_of_every_form_are_kept_and_exported_masked(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    rows = [{"form": form, **record} for form in ALL_FORMS for record in planted_everywhere(hospital, clock, form)]
    response = await client.post("/api/collection/jobs", content=b"".join(orjson.dumps(row) + b"\n" for row in rows),
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await wait_for_job(app, job_id)
    async with database.transaction() as session:
        stored = list((await session.execute(select(JobRejection).where(JobRejection.job_id == job_id))).scalars())
    assert len(stored) == len(rows)
    assert_no_whole_number(json.dumps([[row.record_id, row.errors, row.row] for row in stored], ensure_ascii=False))
    export = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=hospital.headers)
    assert len(export.text.splitlines()) == len(rows)
    assert_no_whole_number(export.text)
