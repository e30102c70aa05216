"""Quality metrics maintained as records arrive, and the monthly report in the bulletin's shape."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import SimulatedClock
from cityhealth.collection.quality import percentage
from cityhealth.db.engine import Database
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import make_record
from tests.factories.security import admin_headers

ROW_KEYS = {
    "uploaded_records",
    "upload_days",
    "realtime_forms",
    "outpatient_visits",
    "discharges",
    "outpatient_conformance_pct",
    "outpatient_conformance_basis",
    "discharge_conformance_pct",
    "discharge_conformance_basis",
}


async def enrol(app: FastAPI, client: httpx.AsyncClient, code: str, group: str) -> None:
    response = await client.post(
        "/api/collection/enrolments",
        headers=await admin_headers(app),
        json={"organization_code": code, "group": group, "start_date": "2022-01-01"},
    )
    assert response.status_code == 201, response.text


async def report(app: FastAPI, client: httpx.AsyncClient, month: str = "2022-06") -> dict[str, object]:
    response = await client.get("/api/collection/quality", params={"month": month}, headers=await admin_headers(app))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_percentage_rounds_half_up() -> None:
    assert percentage(1, 8) == "12.50"
    assert percentage(2, 3) == "66.67"
    assert percentage(1, 200) == "0.50"
    assert percentage(7, 8000) == "0.09"  # 0.0875 rounds half up


async def test_conformance_counts_on_time_first_versions_that_were_never_amended(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await enrol(app, client, hospital.code, "outpatient")
    now = clock.now()
    on_time = [make_record("outpatient_visit", hospital.code, f"v-{i}", now - timedelta(hours=2)) for i in range(3)]
    late = make_record("outpatient_visit", hospital.code, "late", now - timedelta(hours=30))
    await post_records(client, hospital, "outpatient_visit", [*on_time, late])
    assert (await report(app, client))["hospitals"][0]["outpatient_conformance_pct"] == "75.00"
    clock.advance(timedelta(minutes=1))
    await post_records(client, hospital, "outpatient_visit", [{**on_time[0], "action": 2, "doctor_name": "周"}])
    row = (await report(app, client))["hospitals"][0]
    assert (row["outpatient_conformance_pct"], row["outpatient_conformance_basis"]) == ("50.00", 4)
    # a second amendment of the same record takes nothing more away
    await post_records(client, hospital, "outpatient_visit", [{**on_time[0], "action": 2, "doctor_name": "吴"}])
    await post_records(client, hospital, "outpatient_visit", [{**on_time[1], "action": 3}])
    row = (await report(app, client))["hospitals"][0]
    assert (row["outpatient_conformance_pct"], row["outpatient_conformance_basis"]) == ("33.33", 3)


async def test_late_by_the_moved_clock_is_not_conforming(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await enrol(app, client, hospital.code, "inpatient")
    event = clock.now() - timedelta(hours=1)
    clock.advance(timedelta(hours=24))  # now 25 h after the event: outside the 24 h window
    from cityhealth.security.principals import Scope
    from tests.factories.security import headers_for, machine

    hospital.headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=hospital.org.id))
    await post_records(client, hospital, "discharge", [make_record("discharge", hospital.code, "d-1", event)])
    row = (await report(app, client))["hospitals"][0]
    assert (row["discharge_conformance_pct"], row["discharge_conformance_basis"]) == ("0.00", 1)


async def test_unenrolled_group_prints_null_not_zero(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await post_records(
        client,
        hospital,
        "outpatient_visit",
        [make_record("outpatient_visit", hospital.code, "v", clock.now() - timedelta(hours=1))],
    )
    row = (await report(app, client))["hospitals"][0]
    assert row["outpatient_conformance_pct"] is None
    assert row["outpatient_conformance_basis"] is None


async def test_report_has_the_bulletin_shape(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, district: Unit, clock: SimulatedClock, database: Database
) -> None:
    await enrol(app, client, district.code, "outpatient")
    balance = await client.put(
        "/api/collection/opening-balances",
        headers=await admin_headers(app),
        json={"kind": "accepted_total", "count": 1_000_000, "as_of": "2022-05-31"},
    )
    assert balance.status_code == 200, balance.text
    await client.put(
        "/api/collection/opening-balances",
        headers=await admin_headers(app),
        json={"kind": "health_record_basic", "count": 900, "as_of": "2022-05-31", "area_code": "320115"},
    )
    now = clock.now()
    await post_records(
        client,
        district,
        "outpatient_visit",
        [make_record("outpatient_visit", district.code, f"v-{i}", now - timedelta(hours=1)) for i in range(4)],
    )
    await post_records(
        client,
        district,
        "health_record",
        [make_record("health_record", district.code, "hr-1", now - timedelta(days=2))],
    )
    await post_records(
        client,
        district,
        "hypertension_followup",
        [make_record("hypertension_followup", district.code, "f-1", now - timedelta(days=1))],
    )
    await post_records(
        client,
        hospital,
        "lab_report",
        [
            make_record("lab_report", hospital.code, "l-1", now - timedelta(hours=1)),
            make_record("lab_report", hospital.code, "l-2", now - timedelta(hours=1), report_no=None),
        ],
    )
    workload = make_record("workload_daily", hospital.code, "w-14", now - timedelta(days=1))
    await post_records(client, hospital, "workload_daily", [workload])
    await post_records(
        client,
        hospital,
        "workload_daily",
        [{**workload, "action": 2, "outpatient_emergency_visits": 10, "discharges": 2}],
    )
    clock.advance(timedelta(days=1))
    body = await report(app, client)
    assert body["forms_total"] == 11
    # the two workload reports are a separate feed: not in the accepted total
    assert body["cumulative_accepted_at_month_end"] == 1_000_000 + 4 + 1 + 1 + 1
    district_row = body["districts"][0]  # type: ignore[index]
    assert set(district_row) == ROW_KEYS | {"area", "name", "health_records_cumulative"}
    assert (district_row["area"], district_row["name"]) == ("320115", "江宁区")
    assert district_row["uploaded_records"] == 6
    assert district_row["upload_days"] == 1
    assert district_row["realtime_forms"] == 1
    assert (district_row["outpatient_conformance_pct"], district_row["outpatient_conformance_basis"]) == ("100.00", 4)
    assert district_row["health_records_cumulative"] == {"basic": 901, "hypertension": 1, "diabetes": 0}
    hospital_row = body["hospitals"][0]  # type: ignore[index]
    assert set(hospital_row) == ROW_KEYS | {"hospital"}
    assert hospital_row["hospital"] == "南京鼓楼医院"
    # workload reports are not uploads; the re-sent report replaced the first
    assert (hospital_row["uploaded_records"], hospital_row["outpatient_visits"], hospital_row["discharges"]) == (
        2,
        10,
        2,
    )
    assert hospital_row["realtime_forms"] == 1
    july = await report(app, client, "2022-07")
    assert july["hospitals"] == []
    assert july["cumulative_accepted_at_month_end"] == body["cumulative_accepted_at_month_end"]


async def test_followup_classification_disagreement_is_flagged(
    app: FastAPI, client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    record = make_record(
        "hypertension_followup", district.code, "f-1", clock.now() - timedelta(days=1), sbp=185, dbp=100
    )
    body = (await post_records(client, district, "hypertension_followup", [record])).json()
    warnings = {w["rule"]: w for w in body["records"][0]["warnings"]}
    assert body["records"][0]["status"] == "accepted"
    assert (
        warnings["followup.classification_mismatch"]["submitted"],
        warnings["followup.classification_mismatch"]["computed"],
    ) == ("1", "2")
    assert "followup.urgent_referral" in warnings


async def test_enrolment_outside_the_month_does_not_count(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    response = await client.post(
        "/api/collection/enrolments",
        headers=await admin_headers(app),
        json={
            "organization_code": hospital.code,
            "group": "outpatient",
            "start_date": "2022-01-01",
            "end_date": str(date(2022, 5, 31)),
        },
    )
    assert response.status_code == 201
    await post_records(
        client,
        hospital,
        "outpatient_visit",
        [make_record("outpatient_visit", hospital.code, "v", clock.now() - timedelta(hours=1))],
    )
    assert (await report(app, client))["hospitals"][0]["outpatient_conformance_pct"] is None
