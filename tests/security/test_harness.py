"""The suite's own checks (tests/security/harness.py) find what they are there to find."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.collection.models import JobRejection
from cityhealth.db.engine import Database
from tests.security.harness import stored_whole_numbers
from tests.security.objects import OBJECT_ENDPOINTS, load_declarations


async def test_the_scan_finds_a_whole_number_in_a_stored_rejected_row(app: FastAPI, database: Database) -> None:
    load_declarations()
    owner = (await OBJECT_ENDPOINTS[("GET", "/api/collection/jobs/{job_id}")].seed(app, 1))[0]
    assert await stored_whole_numbers(database) == []
    statement = select(JobRejection).where(JobRejection.job_id == owner.path["job_id"])
    async with database.transaction() as session:
        rejection = (await session.execute(statement)).scalar_one()
        kept = rejection.row
        rejection.row = {**(kept or {}), "marital_name": "手机13912345678"}
    assert await stored_whole_numbers(database) == [("a stored row of collection_job_rejections", "139****5678")]
    async with database.transaction() as session:  # put back: the harness checks this test's rows too
        (await session.execute(statement)).scalar_one().row = kept
