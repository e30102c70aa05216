"""Rejected rows stored before every field was masked are rewritten masked, once, batch by batch."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import JobRejection
from cityhealth.collection.rejection_masking import mask_stored_rejections
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from tests.collection.conftest import Unit, wait_for_job
from tests.factories.collection import make_record

ID_NUMBER = make_resident_id("320102", date(1985, 4, 12), 37)
MOBILE = "13912345678"


async def job_with_rejections(app: FastAPI, client: httpx.AsyncClient, unit: Unit, clock: SimulatedClock,
                              count: int) -> int:
    at = clock.now() - timedelta(hours=1)
    rows = [{"form": "outpatient_visit", **make_record("outpatient_visit", unit.code, f"v-{n}", at, sex_code="9")}
            for n in range(count)]
    response = await client.post("/api/collection/jobs", content=b"".join(orjson.dumps(row) + b"\n" for row in rows),
                                 headers={**unit.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    await wait_for_job(app, job_id)
    return job_id


async def stored(database: Database, job_id: int) -> list[JobRejection]:
    async with database.transaction() as session:
        statement = select(JobRejection).where(JobRejection.job_id == job_id).order_by(JobRejection.position)
        return list((await session.execute(statement)).scalars())


async def test_old_rows_are_rewritten_masked_and_a_second_run_finds_nothing(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    job_id = await job_with_rejections(app, client, hospital, clock, 5)
    async with database.transaction() as session:  # rows 2 and 4 as a job stored them before issue #12
        old_rows = select(JobRejection).where(JobRejection.position.in_([2, 4]))
        for rejection in (await session.execute(old_rows)).scalars():
            rejection.record_id = ID_NUMBER
            rejection.row = {**(rejection.row or {}), "marital_name": MOBILE}
            rejection.errors = [{**rejection.errors[0], "value": MOBILE, "message": f"value {ID_NUMBER}"}]
    untouched = [(row.record_id, row.errors, row.row) for row in await stored(database, job_id)
                 if row.position not in (2, 4)]

    assert await mask_stored_rejections(database, batch_rows=2) == 2

    rows = await stored(database, job_id)
    for row in (rows[1], rows[3]):
        assert row.record_id == mask_resident_id(ID_NUMBER)
        assert row.row is not None
        assert row.row["marital_name"] == mask_phone(MOBILE)
        assert (row.errors[0]["value"], row.errors[0]["message"]) == (
            mask_phone(MOBILE), f"value {mask_resident_id(ID_NUMBER)}")
    assert [(row.record_id, row.errors, row.row) for row in (rows[0], rows[2], rows[4])] == untouched
    assert await mask_stored_rejections(database, batch_rows=2) == 0
