"""The bulk path: streamed files, checked encodings and gzip, chunked idempotent processing, re-runs."""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import SimulatedClock
from cityhealth.collection import jobs, service
from cityhealth.collection.api import runtime
from cityhealth.collection.models import DailyCount, Job, JobRejection, Record, RecordVersion, SpoolFrame
from cityhealth.collection.spool import SpoolWriter
from cityhealth.db.engine import Database
from cityhealth.errors import NotFound
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from cityhealth.security.principals import Role, Scope
from tests.collection.conftest import Unit, stored_count, wait_for_job
from tests.factories.collection import make_record
from tests.factories.security import admin_headers, headers_for, machine, staff


def ndjson(unit: Unit, clock: SimulatedClock, count: int, **overrides: object) -> bytes:
    at = clock.now() - timedelta(hours=3)
    lines = [
        orjson.dumps(
            {"form": "outpatient_visit", **make_record("outpatient_visit", unit.code, f"v-{i}", at, **overrides)}
        )
        for i in range(count)
    ]
    return b"\n".join(lines) + b"\n"


async def upload(client: httpx.AsyncClient, unit: Unit, body: bytes, **headers: str) -> httpx.Response:
    return await client.post(
        "/api/collection/jobs",
        content=body,
        headers={**unit.headers, "content-type": "application/x-ndjson", **headers},
    )


async def finished(app: FastAPI, client: httpx.AsyncClient, unit: Unit, response: httpx.Response) -> dict[str, object]:
    assert response.status_code in (200, 202), response.text
    job_id = response.json()["id"]
    await wait_for_job(app, job_id)
    return (await client.get(f"/api/collection/jobs/{job_id}", headers=unit.headers)).json()  # type: ignore[no-any-return]


async def test_bulk_ndjson_job_stores_rows_and_summarises(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    body = (
        ndjson(hospital, clock, 5)
        + orjson.dumps(
            {
                "form": "outpatient_visit",
                **make_record("outpatient_visit", hospital.code, "bad", clock.now() - timedelta(hours=1), sex_code="1"),
            }
        )
        + b"\n{oops\n"
    )
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    assert job["status"] == "completed"
    assert job["counts"] == {"received": 7, "accepted": 5, "rejected": 2}
    assert job["rejections_by_rule"] == {"field.unknown": 1, "json.malformed": 1}
    assert await stored_count(database) == 5
    lines = (await client.get(f"/api/collection/jobs/{job['id']}/rejections", headers=hospital.headers)).text
    rows = [orjson.loads(line) for line in lines.splitlines()]
    assert [(r["position"], r["errors"][0]["rule"]) for r in rows] == [(6, "field.unknown"), (7, "json.malformed")]
    assert rows[0]["record_id"] == "bad"


async def test_same_file_again_is_the_same_job_with_one_spool_and_counts_once(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    body = ndjson(hospital, clock, 3)
    first = await finished(app, client, hospital, await upload(client, hospital, body))
    again = await upload(client, hospital, body)
    assert (again.status_code, again.json()["id"]) == (200, first["id"])
    async with database.transaction() as session:
        counts = (await session.execute(select(DailyCount))).scalar_one()
        spools = (await session.execute(select(func.count(func.distinct(SpoolFrame.spool_id))))).scalar_one()
    assert (counts.received, counts.accepted, spools) == (3, 3, 1)


async def test_gzip_and_gb18030_csv_are_accepted(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("outpatient_visit", hospital.code, "c-1", clock.now() - timedelta(hours=1))
    header = list(record)
    text = (
        ",".join(header)
        + "\n"
        + ",".join(
            str(record[name]).lower() if isinstance(record[name], bool) else str(record[name]) for name in header
        )
        + "\n"
    )
    body = gzip.compress(text.encode("gb18030"))
    response = await client.post(
        "/api/collection/jobs?form=outpatient_visit",
        content=body,
        headers={**hospital.headers, "content-type": "text/csv; charset=GB18030", "content-encoding": "gzip"},
    )
    job = await finished(app, client, hospital, response)
    assert job["counts"] == {"received": 1, "accepted": 1}
    assert await stored_count(database) == 1


async def test_a_csv_job_of_an_unknown_form_is_a_422_naming_the_form_and_stores_nothing(
    client: httpx.AsyncClient, hospital: Unit, database: Database
) -> None:
    response = await client.post(
        "/api/collection/jobs?form=xray", content=b"record_id\nr-1\n",
        headers={**hospital.headers, "content-type": "text/csv"},
    )
    problem = response.json()
    assert (response.status_code, problem["code"], problem["field"], problem["value"]) == (
        422, "unknown_form", "form", "xray")
    async with database.transaction() as session:
        assert (await session.execute(select(Job))).first() is None


async def test_undeclared_gb18030_is_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, settings: object
) -> None:
    response = await upload(client, hospital, ndjson(hospital, clock, 2).decode().encode("gb18030"))
    assert response.status_code == 422
    assert (response.json()["rule"], response.json()["field"]) == ("encoding.invalid", "body")
    async with database.transaction() as session:
        assert (await session.execute(select(Job))).first() is None
    assert await stored_count(database) == 0


async def test_unsupported_declared_encoding_is_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    response = await upload(
        client, hospital, ndjson(hospital, clock, 1), **{"content-type": "application/x-ndjson; charset=big5"}
    )
    assert (response.status_code, response.json()["rule"]) == (422, "encoding.unsupported")


async def test_truncated_gzip_is_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    body = gzip.compress(ndjson(hospital, clock, 50))
    response = await upload(client, hospital, body[: len(body) // 2], **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["rule"]) == (422, "gzip.truncated")
    assert await stored_count(database) == 0


async def test_csv_with_unknown_columns_is_refused(
    client: httpx.AsyncClient, hospital: Unit, database: Database
) -> None:
    response = await client.post(
        "/api/collection/jobs?form=outpatient_visit",
        content=b"visit_no,colour\n1,red\n",
        headers={**hospital.headers, "content-type": "text/csv"},
    )
    assert (response.status_code, response.json()["rule"], response.json()["field"]) == (422, "csv.header", "colour")
    assert await stored_count(database) == 0


async def test_malformed_csv_row_is_rejected_with_its_position(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    record = make_record("workload_daily", hospital.code, "w-1", clock.now() - timedelta(days=1))
    header = ",".join(record)
    body = f"{header}\n{','.join(str(v) for v in record.values())}\n1,2\n".encode()
    response = await client.post(
        "/api/collection/jobs?form=workload_daily",
        content=body,
        headers={**hospital.headers, "content-type": "text/csv"},
    )
    job = await finished(app, client, hospital, response)
    assert job["counts"] == {"received": 2, "accepted": 1, "rejected": 1}
    assert job["rejections_by_rule"] == {"csv.malformed": 1}


async def test_interrupted_job_resumes_without_counting_twice(
    app: FastAPI,
    client: httpx.AsyncClient,
    hospital: Unit,
    clock: SimulatedClock,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.state.tasks.resources[jobs.CHUNK_ROWS_SETTING] = 2
    original = jobs.ingest
    calls = 0

    async def crash_on_second_chunk(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the server died")
        return await original(*args, **kwargs)

    monkeypatch.setattr(jobs, "ingest", crash_on_second_chunk)
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 5)))
    assert (job["status"], job["rows_processed"]) == ("failed", 2)
    assert await stored_count(database) == 2
    response = await client.post(f"/api/collection/jobs/{job['id']}/rerun", headers=await admin_headers(app))
    assert response.json()["status"] == "completed"
    assert response.json()["counts"] == {"received": 5, "accepted": 5}
    async with database.transaction() as session:
        counts = (await session.execute(select(DailyCount))).scalar_one()
    assert (counts.received, counts.accepted) == (5, 5)


async def test_rerun_after_code_table_fix_moves_rejections_to_accepted(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, tmp_path: Path
) -> None:
    codes = tmp_path / "icd10.csv"
    codes.write_text("J18.900,肺炎\n", encoding="utf-8")
    async with database.transaction() as session:
        await service.load_codes(session, clock, "ICD-10", codes)
    record = make_record("outpatient_diagnosis", hospital.code, "g-1", clock.now() - timedelta(hours=1))
    body = orjson.dumps({"form": "outpatient_diagnosis", **record}) + b"\n"
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    assert job["counts"] == {"received": 1, "rejected": 1}
    codes.write_text("J18.900,肺炎\nI10.x00,高血压\n", encoding="utf-8")
    async with database.transaction() as session:
        await service.load_codes(session, clock, "ICD-10", codes)
    rerun = await client.post(f"/api/collection/jobs/{job['id']}/rerun", headers=await admin_headers(app))
    assert rerun.json()["counts"] == {"received": 1, "accepted": 1, "rejected": 0}
    assert rerun.json()["rejections_by_rule"] == {}
    async with database.transaction() as session:
        counts = (await session.execute(select(DailyCount))).scalar_one()
    assert (counts.received, counts.accepted, counts.rejected) == (1, 1, 0)


async def test_purge_removes_raw_payloads_after_retention(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 2)))
    async with database.transaction() as session:
        spool = (await session.get(Job, job["id"])).spool_id  # type: ignore[union-attr]
        assert spool is not None
        assert await service.purge(session, clock, 90) == 0
    assert await _frames(database, spool) == 1
    clock.advance(timedelta(days=91))
    async with database.transaction() as session:
        assert await service.purge(session, clock, 90) == 1
        assert (await session.get(Job, job["id"])).spool_id is None  # type: ignore[union-attr]
    assert await _frames(database, spool) == 0
    rerun = await client.post(f"/api/collection/jobs/{job['id']}/rerun", headers=await admin_headers(app))
    assert (rerun.status_code, rerun.json()["code"]) == (409, "raw_payload_purged")


async def _frames(database: Database, spool_id: str) -> int:
    async with database.transaction() as session:
        found = await session.execute(select(func.count()).where(SpoolFrame.spool_id == spool_id))
        return int(found.scalar_one())


async def test_purge_deletes_the_frames_of_an_abandoned_upload_only_when_old(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    kept = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 2)))
    writer = SpoolWriter(database, runtime(app)[0].spool_key, clock.now())  # an upload cut off: no job, no payload
    await writer.write(b"{}\n")
    await writer.close()
    async with database.transaction() as session:
        assert await service.purge(session, clock, 90) == 0
    assert await _frames(database, writer.spool_id) == 1  # it may still be arriving
    clock.advance(service.ORPHAN_FRAMES_AFTER + timedelta(seconds=1))
    async with database.transaction() as session:
        assert await service.purge(session, clock, 90) == 0
        job = await session.get(Job, kept["id"])
    assert await _frames(database, writer.spool_id) == 0
    assert job is not None
    assert job.spool_id is not None
    assert await _frames(database, job.spool_id) == 1  # a job's spool stays for the retention period


async def test_a_refused_upload_leaves_no_frames_and_no_job(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    body = gzip.compress(ndjson(hospital, clock, 50))[:-20]  # cut short: the gzip stream has no end
    response = await upload(client, hospital, body, **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["code"]) == (422, "gzip_truncated")
    async with database.transaction() as session:
        frames = (await session.execute(select(func.count()).select_from(SpoolFrame))).scalar_one()
        jobs_recorded = (await session.execute(select(func.count()).select_from(Job))).scalar_one()
    assert (frames, jobs_recorded) == (0, 0)


async def test_another_units_job_is_not_found(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 1)))
    response = await client.get(f"/api/collection/jobs/{job['id']}", headers=other_hospital.headers)
    assert response.status_code == 404


async def test_another_units_rejections_are_not_found(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 1)))
    response = await client.get(f"/api/collection/jobs/{job['id']}/rejections", headers=other_hospital.headers)
    assert (response.status_code, response.json()["code"]) == (404, "job_not_found")


@pytest.mark.parametrize("role", [Role.READING_CENTRE_DOCTOR, Role.ORGANIZATION_ADMIN])
@pytest.mark.parametrize("route", ["", "/rejections"])
async def test_staff_of_the_jobs_unit_without_a_collection_scope_are_refused(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, role: Role, route: str
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 1)))
    headers = await headers_for(app, staff(role, organization_id=hospital.org.id, user_id=31))
    response = await client.get(f"/api/collection/jobs/{job['id']}{route}", headers=headers)
    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")


async def test_the_job_object_rule_hides_a_job_from_its_units_staff_without_a_collection_scope(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 1)))
    administrator = staff(Role.ORGANIZATION_ADMIN, organization_id=hospital.org.id, user_id=31)
    async with database.transaction() as session:
        with pytest.raises(NotFound) as refused:
            await service.job_for(session, administrator, int(str(job["id"])))
    assert (refused.value.code, refused.value.status) == ("job_not_found", 404)


async def test_a_reader_of_the_jobs_unit_without_the_upload_scope_reads_it(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 1)))
    headers = await headers_for(app, machine(Scope.COLLECTION_READ, organization_id=hospital.org.id,
                                             client_id="reader"))
    response = await client.get(f"/api/collection/jobs/{job['id']}", headers=headers)
    assert (response.status_code, response.json()["id"]) == (200, job["id"])


@pytest.mark.parametrize("chunk_rows", [2, 100])
async def test_record_and_its_amendment_in_one_file_are_applied_in_order(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, chunk_rows: int
) -> None:
    # 2: the amendment lands in a later chunk; 100: in the same one
    app.state.tasks.resources[jobs.CHUNK_ROWS_SETTING] = chunk_rows
    at = clock.now() - timedelta(hours=3)
    first = make_record("outpatient_visit", hospital.code, "v-1", at)
    lines = [
        {"form": "outpatient_visit", **first},
        {"form": "outpatient_visit", **make_record("outpatient_visit", hospital.code, "v-2", at)},
        {"form": "outpatient_visit", **first, "action": 2, "doctor_name": "周医生"},
        {"form": "outpatient_visit", **first, "action": 2, "doctor_name": "周医生"},
    ]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    assert job["counts"] == {"received": 4, "accepted": 2, "amended": 1, "duplicate": 1}
    async with database.transaction() as session:
        current = (await session.execute(select(Record).where(Record.record_id == "v-1"))).scalar_one()
        versions = (await session.execute(select(RecordVersion))).scalars().all()
        counts = (await session.execute(select(DailyCount))).scalar_one()
    assert (current.version, current.action, current.fields["doctor_name"]) == (2, 2, "周医生")
    assert [(v.record_id, v.version) for v in versions] == [("v-1", 1)]
    assert (counts.received, counts.accepted, counts.amended, counts.duplicate) == (4, 2, 1, 1)


async def test_bulk_records_keep_their_event_time_exactly(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = (clock.now() - timedelta(hours=3)).replace(microsecond=0)
    job = await finished(app, client, hospital, await upload(client, hospital, ndjson(hospital, clock, 3)))
    assert job["counts"] == {"received": 3, "accepted": 3}
    async with database.transaction() as session:
        # Compared in SQL: on SQLite the stored text must be exactly what the ORM writes for this instant.
        found = (await session.execute(select(Record.record_id).where(Record.event_time == at))).scalars().all()
        received = (await session.execute(select(Record.received_at).distinct())).scalars().all()
    assert sorted(found) == ["v-0", "v-1", "v-2"]
    assert received == [clock.now()]


async def test_job_prepared_in_worker_processes_is_stored_and_counted_like_in_process(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    # Several chunks, each prepared by a prepare process.
    app.state.tasks.resources |= {jobs.CHUNK_ROWS_SETTING: 3, jobs.POOL_MIN_BYTES_SETTING: 0}
    at = clock.now() - timedelta(hours=3)
    patient = make_record("patient_master_index", hospital.code, "p-1", at)
    lines = [
        orjson.dumps({"form": "outpatient_visit", **make_record("outpatient_visit", hospital.code, "v-1", at)}),
        b"",
        orjson.dumps({"form": "patient_master_index", **patient}),
        b"{oops",
        orjson.dumps({"form": "outpatient_visit", **make_record("outpatient_visit", hospital.code, "v-2", at)}),
        orjson.dumps({"form": "patient_master_index", **patient, "action": 2, "phone": "13900000000"}),
        orjson.dumps(
            {"form": "outpatient_visit", **make_record("outpatient_visit", hospital.code, "bad", at, sex_code="1")}
        ),
        # rejected in the server process, after the worker: the code names no registered unit
        orjson.dumps({"form": "outpatient_visit", **make_record("outpatient_visit", "NOPE", "v-foreign", at)}),
    ]
    job = await finished(app, client, hospital, await upload(client, hospital, b"\n".join(lines) + b"\n"))
    assert job["status"] == "completed"
    assert (job["counts"], job["rows_processed"]) == (
        {"received": 7, "accepted": 3, "amended": 1, "rejected": 3},
        8,
    )
    assert jobs.pool_of(app.state.tasks).started  # the chunks went to a prepare process
    rejections = await client.get(f"/api/collection/jobs/{job['id']}/rejections", headers=hospital.headers)
    rows = [orjson.loads(line) for line in rejections.text.splitlines()]
    assert [(r["position"], r["errors"][0]["rule"], r["record_id"]) for r in rows] == [
        (4, "json.malformed", None),
        (7, "field.unknown", "bad"),
        (8, "org_code.unknown", "v-foreign"),
    ]
    async with database.transaction() as session:
        stored = {r.record_id: r for r in (await session.execute(select(Record))).scalars()}
        counts = (await session.execute(select(DailyCount).where(DailyCount.form == "outpatient_visit"))).scalar_one()
    assert sorted(stored) == ["p-1", "v-1", "v-2"]
    assert stored["p-1"].version == 2
    assert "13900000000" not in orjson.dumps(stored["p-1"].fields).decode()  # the phone number is encrypted
    assert (counts.received, counts.accepted, counts.rejected) == (4, 2, 2)


# Masked in this process, or by the prepare process that found the row invalid (ingest must not mask it again).
@pytest.mark.parametrize("in_prepare_process", [False, True], ids=["in_process", "prepare_process"])
async def test_id_and_mobile_numbers_in_other_fields_are_stored_and_exported_masked(
    app: FastAPI,
    client: httpx.AsyncClient,
    hospital: Unit,
    clock: SimulatedClock,
    database: Database,
    in_prepare_process: bool,
) -> None:
    if in_prepare_process:
        app.state.tasks.resources |= {jobs.POOL_MIN_BYTES_SETTING: 0}
    id_number, mobile = make_resident_id("320102", date(1985, 4, 12), 37), "13912345678"
    record = make_record("patient_master_index", hospital.code, "p-1", clock.now() - timedelta(hours=1),
                         ethnicity_code=id_number, marital_name=f"手机{mobile}")
    body = orjson.dumps({"form": "patient_master_index", **record}) + b"\n"
    job = await finished(app, client, hospital, await upload(client, hospital, body))
    async with database.transaction() as session:
        stored = (await session.execute(select(JobRejection).where(JobRejection.job_id == job["id"]))).scalar_one()
    assert stored.row is not None
    assert (stored.row["ethnicity_code"], stored.row["marital_name"]) == (
        mask_resident_id(id_number), f"手机{mask_phone(mobile)}")
    assert (stored.row["id_number"], stored.row["phone"]) == (
        mask_resident_id(record["id_number"]), mask_phone(record["phone"]))  # the named fields, as before
    values = {error["field"]: error["value"] for error in stored.errors}
    assert (values["ethnicity_code"], values["marital_name"]) == (
        mask_resident_id(id_number), f"手机{mask_phone(mobile)}")
    export = await client.get(f"/api/collection/jobs/{job['id']}/rejections", headers=hospital.headers)
    exported = orjson.loads(export.content)
    assert (exported["row"], exported["errors"]) == (stored.row, stored.errors)
    assert id_number not in export.text
    assert mobile not in export.text
    assert jobs.pool_of(app.state.tasks).started == in_prepare_process


async def test_rejected_rows_stored_unmasked_before_are_exported_masked(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    id_number, mobile = make_resident_id("320102", date(1985, 4, 12), 37), "13912345678"
    rejected = ndjson(hospital, clock, 1, sex_code="9")
    job = await finished(app, client, hospital, await upload(client, hospital, rejected))
    async with database.transaction() as session:  # as a job stored it before every field was masked
        stored = (await session.execute(select(JobRejection).where(JobRejection.job_id == job["id"]))).scalar_one()
        stored.record_id = id_number
        stored.row = {**(stored.row or {}), "marital_name": mobile, "notes": [{"id": id_number}]}
        stored.errors = [{**stored.errors[0], "value": mobile, "message": f"value {mobile}"}]
    export = await client.get(f"/api/collection/jobs/{job['id']}/rejections", headers=hospital.headers)
    exported = orjson.loads(export.content)
    assert exported["record_id"] == mask_resident_id(id_number)
    assert (exported["row"]["marital_name"], exported["row"]["notes"]) == (
        mask_phone(mobile), [{"id": mask_resident_id(id_number)}])
    assert (exported["errors"][0]["value"], exported["errors"][0]["message"]) == (
        mask_phone(mobile), f"value {mask_phone(mobile)}")
    async with database.transaction() as session:  # the suite's harness scans stored rows: none left whole
        await session.delete(await session.merge(stored))
