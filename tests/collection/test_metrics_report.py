"""The bulletin's collection figures under amendments and revocations: uploaded records, upload days, workload
reports, conformance, cumulative totals, health records and managed residents, as docs/domain.md defines them."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import (
    FollowupFlag,
    ManagedRecord,
    Workload,
)
from cityhealth.db.engine import Database
from tests.collection.amendments_support import (
    assert_counters_equal_a_recount,
    assert_managed_equal_the_live_holders,
    conformance,
    daily_counts,
    enrol,
    move_to,
    nanjing,
    quality,
    send,
    stored_versions,
    visit,
)
from tests.collection.conftest import Unit
from tests.factories.collection import make_record
from tests.factories.security import admin_headers


async def test_uploaded_records_count_every_received_record_valid_or_not(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    record = visit(hospital, "v-1", at)
    await send(client, hospital, "outpatient_visit", record)
    await send(client, hospital, "outpatient_visit", record)  # duplicate
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-2", at, visit_no=None))  # rejected
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["upload_days"], row["realtime_forms"]) == (4, 1, 1)


async def test_upload_days_are_distinct_nanjing_days_and_exclude_workload_reports(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await move_to(app, clock, nanjing(15, 23, 50), hospital)
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", clock.now() - timedelta(hours=1)))
    await move_to(app, clock, nanjing(16, 0, 10), hospital)  # 16:10 UTC on the 15th: a new day in Nanjing
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-2", clock.now() - timedelta(hours=1)))
    await move_to(app, clock, nanjing(18, 9), hospital)
    await send(client, hospital, "workload_daily",
               make_record("workload_daily", hospital.code, "w-17", nanjing(17, 12)))
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["upload_days"]) == (2, 2)
    assert row["outpatient_visits"] > 0


async def test_a_form_with_only_rejected_records_is_not_a_form_with_data(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(hours=1)
    await send(client, hospital, "outpatient_visit", visit(hospital, "v-1", at))
    await send(client, hospital, "admission", make_record("admission", hospital.code, "a-1", at, dept_code=None))
    await send(client, hospital, "settlement", make_record("settlement", hospital.code, "s-1", at))
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["realtime_forms"]) == (3, 2)


async def test_workload_visits_are_the_latest_report_of_each_day_and_a_revoked_report_counts_nothing(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    day13 = make_record("workload_daily", hospital.code, "w-13", nanjing(13, 12),
                        outpatient_emergency_visits=100, discharges=10)
    day14 = make_record("workload_daily", hospital.code, "w-14", nanjing(14, 12),
                        outpatient_emergency_visits=200, discharges=20)
    await send(client, hospital, "workload_daily", day13, day14)
    await send(client, hospital, "workload_daily", {**day14, "action": 2, "outpatient_emergency_visits": 250})
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"], row["uploaded_records"]) == (350, 30, 0)
    await send(client, hospital, "workload_daily", {**day13, "action": 3})
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (250, 20)
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 250, "w-14")]
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 0


async def test_conformance_in_the_report_follows_amendments_and_revocations(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await enrol(app, client, hospital, "inpatient")
    at = clock.now() - timedelta(hours=2)
    records = [make_record("discharge", hospital.code, f"d-{i}", at) for i in range(8)]
    await send(client, hospital, "discharge", *records)
    await send(client, hospital, "discharge", {**records[0], "action": 2, "dept_name": "心内科"})
    await send(client, hospital, "discharge", {**records[1], "action": 3})
    row = (await quality(app, client))["hospitals"][0]
    # 7 records in the basis (one revoked), 6 still conforming (one amended): 85.71 %
    assert (row["discharge_conformance_pct"], row["discharge_conformance_basis"]) == ("85.71", 7)
    assert row["outpatient_conformance_pct"] is None


async def test_cumulative_accepted_counts_every_stored_version_and_the_opening_balance(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await client.put("/api/collection/opening-balances", headers=await admin_headers(app),
                                json={"kind": "accepted_total", "count": 500, "as_of": "2022-05-31"})
    assert response.status_code == 200, response.text
    record = visit(hospital, "v-1", clock.now() - timedelta(hours=1))
    await send(client, hospital, "outpatient_visit", record)
    await send(client, hospital, "outpatient_visit", record)  # duplicate: not stored
    await send(client, hospital, "outpatient_visit", {**record, "action": 2, "doctor_name": "周医生"})
    await send(client, hospital, "outpatient_visit", {**record, "action": 3})
    assert len(await stored_versions(database)) == 3
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 503
    assert (await quality(app, client, "2022-05"))["cumulative_accepted_at_month_end"] == 500


async def test_health_records_are_counted_distinct_and_leave_when_revoked(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    two = make_record("health_record", district.code, "hr-3", at)
    assert one["record_no"] != two["record_no"]
    await send(client, district, "health_record", one, same_number, two)
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 2, "hypertension": 0, "diabetes": 0}
    await send(client, district, "health_record", {**two, "action": 3})
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}


async def test_follow_ups_count_distinct_managed_residents_per_program(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    number = "32011500100100042"
    first = make_record("hypertension_followup", district.code, "f-1", at - timedelta(days=30),
                        health_record_no=number)
    second = make_record("hypertension_followup", district.code, "f-2", at, health_record_no=number)
    diabetic = make_record("diabetes_followup", district.code, "g-1", at, health_record_no=number)
    await send(client, district, "hypertension_followup", first, second)
    await send(client, district, "diabetes_followup", diabetic)
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 1, "diabetes": 1}


async def test_a_disagreeing_classification_is_flagged_and_the_flag_cleared_by_a_corrected_amendment(
    client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("hypertension_followup", district.code, "f-1", clock.now() - timedelta(days=1),
                         sbp=150, dbp=95)  # uncontrolled, sent as 1 控制满意
    await send(client, district, "hypertension_followup", record)
    async with database.transaction() as session:
        flag = (await session.execute(select(FollowupFlag))).scalar_one()
    assert (flag.submitted, flag.computed, flag.event_month) == ("1", "2", 202206)
    counts = await daily_counts(database)
    assert counts[(district.org.id, "hypertension_followup", date(2022, 6, 15))]["flagged"] == 1
    fixed = {**record, "action": 2, "classification_code": "2", "classification_name": "控制不满意"}
    assert await send(client, district, "hypertension_followup", fixed) == ["amended"]
    async with database.transaction() as session:
        assert (await session.execute(select(FollowupFlag))).scalars().all() == []
    await assert_counters_equal_a_recount(database)


async def test_revoking_a_replaced_workload_report_leaves_its_replacement(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    first = make_record("workload_daily", hospital.code, "w-a", nanjing(14, 12),
                        outpatient_emergency_visits=100, discharges=10)
    replacement = make_record("workload_daily", hospital.code, "w-b", nanjing(14, 12),
                              outpatient_emergency_visits=200, discharges=20)
    await send(client, hospital, "workload_daily", first)
    await send(client, hospital, "workload_daily", replacement)
    assert await send(client, hospital, "workload_daily", {**first, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (200, 20)
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 200, "w-b")]


async def test_an_amended_workload_report_moves_to_its_new_day(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    report = make_record("workload_daily", hospital.code, "w-c", nanjing(13, 12),
                         outpatient_emergency_visits=50, discharges=5)
    await send(client, hospital, "workload_daily", report)
    assert await send(client, hospital, "workload_daily", {**report, "action": 2, "report_date": "20220612"}) == [
        "amended"]
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 12), 50, "w-c")]
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_visits"], row["discharges"]) == (50, 5)


async def test_a_bulk_file_of_reports_keeps_the_latest_of_each_day(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    a = make_record("workload_daily", hospital.code, "w-a", nanjing(14, 12), outpatient_emergency_visits=1,
                    discharges=1)
    b = make_record("workload_daily", hospital.code, "w-b", nanjing(14, 12), outpatient_emergency_visits=2,
                    discharges=2)
    rows = [a, b, {**a, "action": 2, "outpatient_emergency_visits": 3}, {**b, "action": 3}]
    body = b"".join(orjson.dumps({"form": "workload_daily", **row}) + b"\n" for row in rows)
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    await wait_for_job(app, response.json()["id"])
    async with database.transaction() as session:
        kept = (await session.execute(select(Workload))).scalars().all()
    assert [(w.day, w.visits, w.record_id) for w in kept] == [(date(2022, 6, 14), 3, "w-a")]


async def test_revoking_one_of_two_records_of_a_health_record_number_keeps_it_counted(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    await send(client, district, "health_record", one, same_number)
    assert await send(client, district, "health_record", {**same_number, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}


async def test_a_health_record_whose_number_was_amended_leaves_when_revoked(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    record = make_record("health_record", district.code, "hr-1", clock.now() - timedelta(days=1))
    await send(client, district, "health_record", record)
    amended = {**record, "action": 2, "record_no": "32011500100199999"}
    assert await send(client, district, "health_record", amended) == ["amended"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}
    assert await send(client, district, "health_record", {**amended, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 0, "diabetes": 0}


async def test_an_amendment_away_from_a_number_another_record_holds_keeps_that_number(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(days=1)
    one = make_record("health_record", district.code, "hr-1", at)
    same_number = make_record("health_record", district.code, "hr-2", at, record_no=one["record_no"])
    await send(client, district, "health_record", one, same_number)
    assert await send(client, district, "health_record", {**same_number, "action": 2,
                                                          "record_no": "32011500100199999"}) == ["amended"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 2, "hypertension": 0, "diabetes": 0}
    assert await send(client, district, "health_record", {**one, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 1, "hypertension": 0, "diabetes": 0}
    await assert_managed_equal_the_live_holders(database)


async def test_a_management_record_stays_while_a_live_follow_up_holds_its_number(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(days=1)
    number, other = "32011500100100042", "32011500100100043"
    first = make_record("hypertension_followup", district.code, "f-1", at - timedelta(days=30),
                        health_record_no=number)
    second = make_record("hypertension_followup", district.code, "f-2", at, health_record_no=number)
    await send(client, district, "hypertension_followup", first, second)
    assert await send(client, district, "hypertension_followup", {**first, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 1, "diabetes": 0}
    moved = {**second, "action": 2, "health_record_no": other}
    assert await send(client, district, "hypertension_followup", moved) == ["amended"]
    await assert_managed_equal_the_live_holders(database)
    assert await send(client, district, "hypertension_followup", {**moved, "action": 3}) == ["revoked"]
    row = (await quality(app, client))["districts"][0]
    assert row["health_records_cumulative"] == {"basic": 0, "hypertension": 0, "diabetes": 0}
    await assert_managed_equal_the_live_holders(database)


async def test_a_bulk_file_moving_and_revoking_health_records_counts_only_the_numbers_left_held(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    at = clock.now() - timedelta(days=1)
    moved = make_record("health_record", district.code, "hr-1", at)
    gone = make_record("health_record", district.code, "hr-2", at)
    kept = make_record("health_record", district.code, "hr-3", at, record_no=gone["record_no"])
    rows = [moved, gone, kept, {**moved, "action": 2, "record_no": "32011500100199999"},
            {**gone, "action": 3}, {**moved, "action": 2, "record_no": "32011500100199998"}]
    body = b"".join(orjson.dumps({"form": "health_record", **row}) + b"\n" for row in rows)
    for _ in range(2):  # the same file again is the same job: nothing moves twice
        response = await client.post("/api/collection/jobs", content=body,
                                     headers={**district.headers, "content-type": "application/x-ndjson"})
        assert response.status_code in (200, 202), response.text  # 200: the job the first post made
        await wait_for_job(app, response.json()["id"])
    async with database.transaction() as session:
        numbers = sorted((await session.execute(select(ManagedRecord.health_record_no))).scalars())
    assert numbers == sorted([gone["record_no"], "32011500100199998"])
    await assert_managed_equal_the_live_holders(database)


async def test_a_bulk_file_carrying_a_record_its_amendments_and_revocation_counts_each_version_once(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    import orjson

    from tests.collection.conftest import wait_for_job

    at = clock.now() - timedelta(hours=2)
    first = visit(hospital, "v-1", at)
    amended = {**first, "action": 2, "doctor_name": "周医生"}
    other = visit(hospital, "v-2", at)
    rows = [first, other, amended, amended, {**other, "action": 3}, {**other, "action": 2, "doctor_name": "晚"},
            visit(hospital, "v-3", at, visit_no=None)]
    body = b"".join(orjson.dumps({"form": "outpatient_visit", **row}) + b"\n" for row in rows)
    for _ in range(2):  # the same file again is the same job: nothing is counted twice
        response = await client.post("/api/collection/jobs", content=body,
                                     headers={**hospital.headers, "content-type": "application/x-ndjson"})
        await wait_for_job(app, response.json()["id"])
    job = (await client.get(f"/api/collection/jobs/{response.json()['id']}", headers=hospital.headers)).json()
    assert job["counts"] == {"received": 7, "accepted": 2, "amended": 1, "revoked": 1, "duplicate": 1,
                             "rejected": 2}
    row = (await daily_counts(database))[(hospital.org.id, "outpatient_visit", date(2022, 6, 15))]
    assert {k: row[k] for k in ("received", "accepted", "amended", "revoked", "duplicate", "rejected")} == \
        job["counts"]
    assert await conformance(database, hospital) == (1, 0)
    await assert_counters_equal_a_recount(database)
