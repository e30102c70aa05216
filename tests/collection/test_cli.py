"""`cityhealth collection …`: code tables, the quality report, operator settings, retention and masking.

The commands run their own event loop (asyncio.run), so async tests invoke them from a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner, Result

from cityhealth.cli import app as cli
from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import CodeTableLoad, Enrolment, FormAssignment, OpeningBalance, RawPayload
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import make_record
from tests.factories.security import admin_headers

runner = CliRunner()


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITYHEALTH_ENV", "test")
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(settings.var_dir))
    return settings


async def run(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, cli, ["collection", *args])


def codes_file(tmp_path: Path, text: str, name: str = "codes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_load_codes_loads_a_table_and_names_its_generation(
    environment: Settings, database: Database, tmp_path: Path
) -> None:
    first = await run("load-codes", "icd10", str(codes_file(tmp_path, "code,name\nJ18.900,肺炎\nI10,高血压\n")))
    assert first.exit_code == 0, first.output
    assert "ICD-10: 2 codes loaded (generation 1)" in first.output
    second = await run("load-codes", "ICD-10", str(codes_file(tmp_path, "I10,高血压\n", "b.csv")))
    assert "ICD-10: 1 codes loaded (generation 2)" in second.output
    async with database.transaction() as session:
        load = (await session.execute(select(CodeTableLoad))).scalar_one()
    assert (load.table_id, load.generation, load.entries, load.source) == ("ICD-10", 2, 1, "b.csv")


async def test_load_codes_takes_the_icd9cm3_alias(environment: Settings, tmp_path: Path) -> None:
    result = await run("load-codes", "icd9cm3", str(codes_file(tmp_path, "36.06,冠状动脉支架置入\n")))
    assert result.exit_code == 0, result.output
    assert "ICD-9-CM-3: 1 codes loaded (generation 1)" in result.output


async def test_load_codes_refuses_a_misshapen_file_and_loads_nothing(
    environment: Settings, database: Database, tmp_path: Path
) -> None:
    result = await run("load-codes", "icd10", str(codes_file(tmp_path, "J18.900,肺炎\nhyper,高血压\n")))
    assert result.exit_code == 1
    assert "error (invalid_code_file): line 2: 'hyper' is not shaped like a ICD-10 code" in result.output
    async with database.transaction() as session:
        assert (await session.execute(select(CodeTableLoad))).scalars().all() == []


async def test_load_codes_refuses_a_table_that_is_not_loadable(environment: Settings, tmp_path: Path) -> None:
    result = await run("load-codes", "CV04.50.020", str(codes_file(tmp_path, "1,阴性\n")))
    assert result.exit_code == 1
    assert "error (invalid_table)" in result.output


async def test_quality_prints_the_same_report_as_the_api(
    environment: Settings, app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(hours=1)
    await post_records(client, hospital, "outpatient_visit",
                       [make_record("outpatient_visit", hospital.code, f"v-{i}", at) for i in range(3)])
    result = await run("quality", "--month", "2022-06")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    answered = (await client.get("/api/collection/quality", params={"month": "2022-06"},
                                 headers=await admin_headers(app))).json()
    assert printed == answered
    assert printed["hospitals"][0]["uploaded_records"] == 3


async def test_quality_refuses_a_month_that_is_not_yyyy_mm(environment: Settings) -> None:
    result = await run("quality", "--month", "June")
    assert result.exit_code == 1
    assert "error (invalid_month): month must be YYYY-MM, not 'June'" in result.output


async def test_enrol_records_an_open_ended_enrolment(
    environment: Settings, database: Database, hospital: Unit
) -> None:
    result = await run("enrol", hospital.code, "inpatient", "--from", "2022-06-01")
    assert result.exit_code == 0, result.output
    async with database.transaction() as session:
        row = (await session.execute(select(Enrolment))).scalar_one()
    assert f"enrolment {row.id} recorded" in result.output
    assert (row.organization_id, row.group, str(row.start_date), row.end_date) == (
        hospital.org.id, "inpatient", "2022-06-01", None)


async def test_enrol_of_an_unknown_unit_exits_1(environment: Settings, database: Database) -> None:
    result = await run("enrol", "NOPE", "outpatient", "--from", "2022-06-01")
    assert result.exit_code == 1
    assert "error (organization_not_found)" in result.output
    async with database.transaction() as session:
        assert (await session.execute(select(Enrolment))).scalars().all() == []


async def test_enrol_in_an_unknown_group_exits_1(environment: Settings, hospital: Unit) -> None:
    result = await run("enrol", hospital.code, "emergency", "--from", "2022-06-01")
    assert result.exit_code == 1
    assert "error (invalid_group)" in result.output


async def test_assign_forms_records_each_form_once(
    environment: Settings, database: Database, hospital: Unit
) -> None:
    result = await run("assign-forms", hospital.code, "discharge", "settlement", "discharge",
                       "--from", "2022-06-01", "--to", "2022-12-31")
    assert result.exit_code == 0, result.output
    assert "2 form assignment(s) recorded" in result.output
    async with database.transaction() as session:
        rows = (await session.execute(select(FormAssignment).order_by(FormAssignment.id))).scalars().all()
    assert [(r.form, str(r.end_date)) for r in rows] == [("discharge", "2022-12-31"), ("settlement", "2022-12-31")]


async def test_assign_forms_refuses_an_unknown_form(environment: Settings, hospital: Unit) -> None:
    result = await run("assign-forms", hospital.code, "xray", "--from", "2022-06-01")
    assert result.exit_code == 1
    assert "error (unknown_form)" in result.output


async def test_opening_balance_of_an_area_is_recorded_and_replaced(
    environment: Settings, database: Database, district: Unit
) -> None:
    first = await run("opening-balance", "health_record_basic", "900", "--as-of", "2022-05-31", "--area", "320115")
    assert first.exit_code == 0, first.output
    assert "opening balance health_record_basic for area:320115 recorded" in first.output
    await run("opening-balance", "health_record_basic", "950", "--as-of", "2022-05-31", "--area", "320115")
    async with database.transaction() as session:
        rows = (await session.execute(select(OpeningBalance))).scalars().all()
    assert [(r.kind, r.scope, r.count) for r in rows] == [("health_record_basic", "area:320115", 950)]


async def test_opening_balance_of_an_unknown_kind_exits_1(environment: Settings) -> None:
    result = await run("opening-balance", "bookings", "5", "--as-of", "2022-05-31")
    assert result.exit_code == 1
    assert "error (invalid_kind)" in result.output


async def test_purge_empties_real_time_payloads_past_the_retention(
    environment: Settings, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    # The batch was received on the simulated 2022 clock; the command's clock is the system's: long past.
    await post_records(client, hospital, "outpatient_visit",
                       [make_record("outpatient_visit", hospital.code, "v-1", clock.now() - timedelta(hours=1))])
    first = await run("purge", "--retention-days", "30")
    assert first.exit_code == 0, first.output
    assert "1 raw payload(s) purged" in first.output
    async with database.transaction() as session:
        payload = (await session.execute(select(RawPayload))).scalar_one()
    assert payload.body is None
    assert payload.purged_at is not None
    again = await run("purge", "--retention-days", "30")
    assert "0 raw payload(s) purged" in again.output


async def test_mask_rejections_on_a_masked_store_rewrites_nothing(environment: Settings, database: Database) -> None:
    result = await run("mask-rejections")
    assert result.exit_code == 0, result.output
    assert "0 rejected row(s) masked" in result.output


async def test_rerun_of_an_unknown_job_exits_1(environment: Settings, database: Database) -> None:
    result = await run("rerun-job", "424242")
    assert result.exit_code == 1
    assert "error (job_not_found): no job 424242" in result.output


async def test_mask_rejections_rewrites_an_old_unmasked_row(
    environment: Settings, app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock,
    database: Database,
) -> None:
    from datetime import date

    import orjson

    from cityhealth.collection.models import JobRejection
    from cityhealth.registry.identifiers import make_resident_id, mask_resident_id
    from tests.collection.conftest import wait_for_job

    at = clock.now() - timedelta(hours=1)
    rows = [{"form": "outpatient_visit", **make_record("outpatient_visit", hospital.code, f"v-{n}", at,
                                                       visit_no=None)} for n in range(2)]
    response = await client.post("/api/collection/jobs", content=b"".join(orjson.dumps(r) + b"\n" for r in rows),
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    await wait_for_job(app, response.json()["id"])
    number = make_resident_id("320102", date(1985, 4, 12), 37)
    async with database.transaction() as session:  # as a job stored it before every field was masked
        old = (await session.execute(select(JobRejection).where(JobRejection.position == 2))).scalar_one()
        old.record_id = number
    result = await run("mask-rejections")
    assert result.exit_code == 0, result.output
    assert "1 rejected row(s) masked" in result.output
    async with database.transaction() as session:
        ids = (await session.execute(select(JobRejection.record_id).order_by(JobRejection.position))).scalars()
        assert list(ids) == ["v-0", mask_resident_id(number)]
    assert "0 rejected row(s) masked" in (await run("mask-rejections")).output
