"""Operators' settings (enrolment, expected forms, opening balances), the report built on them, and the
platform's own follow-up classification."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.clock import SimulatedClock
from cityhealth.collection.public_health import classify_followup, needs_urgent_referral, review_followup
from cityhealth.collection.quality import parse_month
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.security.principals import Role, Scope
from tests.collection.conftest import Unit, post_records
from tests.factories.collection import add_organization, make_record
from tests.factories.security import admin_headers, headers_for, machine, staff


async def admin(app: FastAPI) -> dict[str, str]:
    return await admin_headers(app)


async def enrol(app: FastAPI, client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/api/collection/enrolments", headers=await admin(app), json=body)


async def balance(app: FastAPI, client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.put("/api/collection/opening-balances", headers=await admin(app), json=body)


async def quality(app: FastAPI, client: httpx.AsyncClient, month: str = "2022-06") -> dict[str, Any]:
    response = await client.get("/api/collection/quality", params={"month": month}, headers=await admin(app))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- enrolment -----------------------------------------------------------------------------------------------


async def test_an_enrolment_is_recorded_and_listed(app: FastAPI, client: httpx.AsyncClient, hospital: Unit) -> None:
    response = await enrol(app, client, organization_code=hospital.code, group="inpatient",
                           start_date="2022-06-01", end_date="2022-12-31")
    assert response.status_code == 201
    created = response.json()
    assert {k: created[k] for k in ("organization_id", "group", "start_date", "end_date")} == {
        "organization_id": hospital.org.id, "group": "inpatient", "start_date": "2022-06-01",
        "end_date": "2022-12-31"}
    operator = await headers_for(app, staff(Role.DATA_QUALITY_OPERATOR, user_id=7))
    listed = (await client.get("/api/collection/enrolments", headers=operator)).json()
    assert listed == [created]


async def test_an_enrolment_of_an_unknown_unit_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await enrol(app, client, organization_code="NOPE", group="outpatient", start_date="2022-06-01")
    problem = response.json()
    assert (response.status_code, problem["code"], problem["field"], problem["value"]) == (
        422, "organization_not_found", "organization_code", "NOPE")


async def test_an_enrolment_ending_before_it_starts_is_refused(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit
) -> None:
    response = await enrol(app, client, organization_code=hospital.code, group="outpatient",
                           start_date="2022-06-01", end_date="2022-05-31")
    problem = response.json()
    assert (response.status_code, problem["code"], problem["field"], problem["value"], problem["rule"]) == (
        422, "invalid_dates", "end_date", "2022-05-31", "time.order")


async def test_an_enrolment_in_an_unknown_group_is_refused(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit
) -> None:
    response = await enrol(app, client, organization_code=hospital.code, group="emergency", start_date="2022-06-01")
    assert response.status_code == 422
    assert (await client.get("/api/collection/enrolments", headers=await admin(app))).json() == []


async def test_only_a_collection_admin_may_enrol(app: FastAPI, client: httpx.AsyncClient, hospital: Unit) -> None:
    editor = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=8))  # reads collection, may not set it
    body = {"organization_code": hospital.code, "group": "outpatient", "start_date": "2022-06-01"}
    for headers in (editor, hospital.headers):
        response = await client.post("/api/collection/enrolments", headers=headers, json=body)
        assert response.status_code == 403
    assert (await client.get("/api/collection/enrolments", headers=await admin(app))).json() == []


async def test_an_enrolment_ending_inside_the_month_still_counts_for_it(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    await enrol(app, client, organization_code=hospital.code, group="outpatient",
                start_date="2022-01-01", end_date="2022-06-01")
    await post_records(client, hospital, "outpatient_visit",
                       [make_record("outpatient_visit", hospital.code, "v-1", clock.now() - timedelta(hours=1))])
    row = (await quality(app, client))["hospitals"][0]
    assert (row["outpatient_conformance_pct"], row["outpatient_conformance_basis"]) == ("100.00", 1)


async def test_an_enrolled_unit_without_records_prints_no_rate(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit
) -> None:
    await enrol(app, client, organization_code=hospital.code, group="outpatient", start_date="2022-06-01")
    row = (await quality(app, client))["hospitals"][0]
    assert (row["uploaded_records"], row["outpatient_conformance_pct"], row["outpatient_conformance_basis"]) == (
        0, None, None)


# --- expected forms -------------------------------------------------------------------------------------------


async def test_assigned_forms_are_recorded_once_each(app: FastAPI, client: httpx.AsyncClient, hospital: Unit) -> None:
    response = await client.post("/api/collection/assignments", headers=await admin(app), json={
        "organization_code": hospital.code, "forms": ["discharge", "outpatient_visit", "discharge"],
        "start_date": "2022-06-01"})
    assert response.status_code == 201
    assert [(a["form"], a["organization_id"], a["end_date"]) for a in response.json()] == [
        ("discharge", hospital.org.id, None), ("outpatient_visit", hospital.org.id, None)]


async def test_assigning_an_unknown_form_is_refused_and_records_nothing(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit
) -> None:
    response = await client.post("/api/collection/assignments", headers=await admin(app), json={
        "organization_code": hospital.code, "forms": ["discharge", "xray"], "start_date": "2022-06-01"})
    problem = response.json()
    assert (response.status_code, problem["code"], problem["field"], problem["value"]) == (
        422, "unknown_form", "forms", "xray")
    assert (await client.get("/api/collection/assignments", headers=await admin(app))).json() == []


async def test_a_hospital_expected_to_send_is_in_the_report_with_zeros(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit
) -> None:
    await client.post("/api/collection/assignments", headers=await admin(app), json={
        "organization_code": hospital.code, "forms": ["discharge"], "start_date": "2022-06-01"})
    rows = (await quality(app, client))["hospitals"]
    assert rows == [{"hospital": "南京鼓楼医院", "uploaded_records": 0, "upload_days": 0, "realtime_forms": 0,
                     "outpatient_visits": 0, "discharges": 0, "outpatient_conformance_pct": None,
                     "outpatient_conformance_basis": None, "discharge_conformance_pct": None,
                     "discharge_conformance_basis": None}]
    assert (await quality(app, client, "2022-05"))["hospitals"] == []


# --- opening balances ---------------------------------------------------------------------------------------


async def test_a_re_recorded_opening_balance_replaces_the_first(app: FastAPI, client: httpx.AsyncClient) -> None:
    first = await balance(app, client, kind="accepted_total", count=100, as_of="2022-05-31")
    second = await balance(app, client, kind="accepted_total", count=250, as_of="2022-04-30")
    assert first.json() == {"kind": "accepted_total", "scope": "platform", "as_of": "2022-05-31", "count": 100}
    assert second.json() == {"kind": "accepted_total", "scope": "platform", "as_of": "2022-04-30", "count": 250}
    assert (await quality(app, client, "2022-05"))["cumulative_accepted_at_month_end"] == 250


async def test_an_opening_balance_counts_from_the_month_of_its_date(app: FastAPI, client: httpx.AsyncClient) -> None:
    await balance(app, client, kind="accepted_total", count=100, as_of="2022-06-30")
    assert (await quality(app, client, "2022-05"))["cumulative_accepted_at_month_end"] == 0
    assert (await quality(app, client, "2022-06"))["cumulative_accepted_at_month_end"] == 100


async def test_per_unit_opening_balances_add_up(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit
) -> None:
    one = await balance(app, client, kind="accepted_total", count=7, as_of="2022-05-31",
                        organization_code=hospital.code)
    await balance(app, client, kind="accepted_total", count=5, as_of="2022-05-31",
                  organization_code=other_hospital.code)
    assert one.json()["scope"] == f"org:{hospital.org.id}"
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 12


async def test_a_health_record_balance_needs_a_registered_area(
    app: FastAPI, client: httpx.AsyncClient, district: Unit
) -> None:
    missing = await balance(app, client, kind="health_record_diabetes", count=5, as_of="2022-05-31")
    unknown = await balance(app, client, kind="health_record_diabetes", count=5, as_of="2022-05-31",
                            area_code="999999")
    for response, value in ((missing, None), (unknown, "999999")):
        problem = response.json()
        assert (response.status_code, problem["code"], problem["field"], problem.get("value"), problem["rule"]) == (
            422, "invalid_area", "area_code", value, "area.unknown")
    ok = await balance(app, client, kind="health_record_diabetes", count=5, as_of="2022-05-31",
                       area_code="320115")
    assert ok.json()["scope"] == "area:320115"
    district_row = (await quality(app, client))["districts"][0]
    assert district_row["health_records_cumulative"] == {"basic": 0, "hypertension": 0, "diabetes": 5}


async def test_a_negative_or_unknown_balance_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    negative = await balance(app, client, kind="accepted_total", count=-1, as_of="2022-05-31")
    unknown = await balance(app, client, kind="bookings", count=1, as_of="2022-05-31")
    assert (negative.status_code, unknown.status_code) == (422, 422)
    assert (await quality(app, client))["cumulative_accepted_at_month_end"] == 0


async def test_a_balance_for_an_unknown_unit_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await balance(app, client, kind="accepted_total", count=1, as_of="2022-05-31",
                             organization_code="NOPE")
    assert (response.status_code, response.json()["code"]) == (422, "organization_not_found")


# --- the report ---------------------------------------------------------------------------------------------


async def test_two_platforms_of_one_area_are_one_row_with_a_joint_rate(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, district: Unit
) -> None:
    org = await add_organization(database, clock, "D320115B", kind="district_platform", name="江宁区第二平台",
                                 area_code="320115")
    second = Unit(org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id,
                                                      client_id="district-b")))
    for unit in (district, second):
        response = await enrol(app, client, organization_code=unit.code, group="outpatient",
                               start_date="2022-06-01")
        assert response.status_code == 201
    now = clock.now()
    await post_records(client, district, "outpatient_visit",
                       [make_record("outpatient_visit", district.code, f"a-{i}", now - timedelta(hours=1))
                        for i in range(3)])
    await post_records(client, second, "outpatient_visit",
                       [make_record("outpatient_visit", second.code, f"b-{i}", now - timedelta(hours=h))
                        for i, h in enumerate((1, 30, 30, 30, 30))])
    districts = (await quality(app, client))["districts"]
    assert len(districts) == 1
    row = districts[0]
    assert (row["area"], row["uploaded_records"], row["upload_days"], row["realtime_forms"]) == ("320115", 8, 1, 1)
    # 3 of 3 and 1 of 5 on time: 4 of 8 jointly, not the mean of 100 % and 20 %
    assert (row["outpatient_conformance_pct"], row["outpatient_conformance_basis"]) == ("50.00", 8)


async def test_hospitals_are_ordered_by_uploaded_records_most_first(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock
) -> None:
    at = clock.now() - timedelta(hours=1)
    await post_records(client, hospital, "outpatient_visit",
                       [make_record("outpatient_visit", hospital.code, "v-1", at)])
    await post_records(client, other_hospital, "outpatient_visit",
                       [make_record("outpatient_visit", other_hospital.code, f"v-{i}", at) for i in range(2)])
    rows = (await quality(app, client))["hospitals"]
    assert [(r["hospital"], r["uploaded_records"]) for r in rows] == [("江苏省人民医院", 2), ("南京鼓楼医院", 1)]


@pytest.mark.parametrize("month", ["2022-13", "2022-00", "22-06"])
async def test_a_month_not_of_the_calendar_is_refused(app: FastAPI, client: httpx.AsyncClient, month: str) -> None:
    response = await client.get("/api/collection/quality", params={"month": month}, headers=await admin(app))
    assert response.status_code == 422


def test_a_month_parses_to_its_first_and_last_day() -> None:
    from datetime import date

    assert parse_month("2024-02") == (202402, date(2024, 2, 1), date(2024, 2, 29))
    assert parse_month("2022-12") == (202212, date(2022, 12, 1), date(2022, 12, 31))
    with pytest.raises(ValidationFailed) as raised:
        parse_month("2022-6")
    assert (raised.value.field, raised.value.rule) == ("month", "format.month")


async def test_the_report_needs_the_collection_read_scope(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit
) -> None:
    response = await client.get("/api/collection/quality", params={"month": "2022-06"}, headers=hospital.headers)
    assert response.status_code == 403


# --- the platform's follow-up classification ----------------------------------------------------------------

readings = st.fixed_dictionaries({
    "sbp": st.integers(40, 300), "dbp": st.integers(20, 200), "fbg_mmol_l": st.floats(0, 50),
    "adverse_reaction": st.booleans(), "new_complication": st.booleans(),
})


@given(record=readings, program=st.sampled_from(["hypertension", "diabetes"]))
def test_the_most_serious_finding_classifies_a_follow_up(record: dict[str, Any], program: str) -> None:
    found = classify_followup(program, record)
    if record["new_complication"]:
        assert found == "4"
    elif record["adverse_reaction"]:
        assert found == "3"
    elif program == "hypertension":
        assert found == ("1" if record["sbp"] < 140 and record["dbp"] < 90 else "2")
    else:
        assert found == ("1" if record["fbg_mmol_l"] < 7.0 else "2")


@given(record=readings)
def test_urgent_referral_is_at_180_systolic_or_110_diastolic(record: dict[str, Any]) -> None:
    assert needs_urgent_referral(record) is (record["sbp"] >= 180 or record["dbp"] >= 110)


def test_the_control_thresholds_are_exclusive() -> None:
    base = {"adverse_reaction": False, "new_complication": False}
    assert classify_followup("hypertension", {**base, "sbp": 139, "dbp": 89}) == "1"
    assert classify_followup("hypertension", {**base, "sbp": 140, "dbp": 80}) == "2"
    assert classify_followup("hypertension", {**base, "sbp": 120, "dbp": 90}) == "2"
    assert classify_followup("diabetes", {**base, "fbg_mmol_l": 6.99}) == "1"
    assert classify_followup("diabetes", {**base, "fbg_mmol_l": 7.0}) == "2"


def test_only_follow_up_forms_are_reviewed() -> None:
    assert review_followup("health_record", {"sbp": 200}) is None
    review = review_followup("diabetes_followup", {"sbp": 120, "dbp": 70, "fbg_mmol_l": 8.1,
                                                   "classification_code": "1"})
    assert review is not None
    assert (review.computed, review.submitted, review.disagrees, review.urgent_referral) == ("2", "1", True, False)
    assert [w["rule"] for w in review.warnings()] == ["followup.classification_mismatch"]


async def test_an_agreeing_follow_up_is_answered_without_warnings(
    client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    record = make_record("diabetes_followup", district.code, "g-1", clock.now() - timedelta(days=1))
    answer = (await post_records(client, district, "diabetes_followup", [record])).json()["records"][0]
    assert answer == {"position": 1, "record_id": "g-1", "status": "accepted", "version": 1}


async def test_an_urgent_follow_up_is_warned_even_when_its_classification_agrees(
    client: httpx.AsyncClient, district: Unit, clock: SimulatedClock
) -> None:
    record = make_record("hypertension_followup", district.code, "f-1", clock.now() - timedelta(days=1),
                         sbp=190, dbp=100, classification_code="2", classification_name="控制不满意")
    answer = (await post_records(client, district, "hypertension_followup", [record])).json()["records"][0]
    assert (answer["status"], [w["rule"] for w in answer["warnings"]]) == ("accepted", ["followup.urgent_referral"])


async def second_platform(app: FastAPI, database: Database, clock: SimulatedClock) -> Unit:
    org = await add_organization(database, clock, "D320115B", kind="district_platform", name="江宁区第二平台",
                                 area_code="320115")
    return Unit(org, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id,
                                                    client_id="district-b")))


async def test_two_platforms_of_one_area_count_the_union_of_their_days_and_forms(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, district: Unit
) -> None:
    second = await second_platform(app, database, clock)
    at = clock.now() - timedelta(hours=1)
    await post_records(client, district, "outpatient_visit",
                       [make_record("outpatient_visit", district.code, "v-1", at)])
    clock.advance(timedelta(days=1))
    second.headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=second.org.id,
                                                    client_id="district-b"))
    await post_records(client, second, "discharge", [make_record("discharge", second.code, "d-1", at)])
    row = (await quality(app, client))["districts"][0]
    # One record on the 15th from one platform and one on the 16th from the other: two days, two forms.
    assert (row["uploaded_records"], row["upload_days"], row["realtime_forms"]) == (2, 2, 2)


async def test_the_joint_rate_of_two_platforms_is_exact_on_large_bases(
    app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, district: Unit
) -> None:
    from cityhealth.collection.models import Conformance

    second = await second_platform(app, database, clock)
    for unit in (district, second):
        await enrol(app, client, organization_code=unit.code, group="outpatient", start_date="2022-06-01")
    # Aggregates as a month of real uploads leaves them: rates whose two printed decimals lose digits.
    cells = {202206: ((333_349, 1_000_000), (10, 10)), 202207: ((666_650, 1_000_000), (0, 10))}
    async with database.transaction() as session:
        for month, ((first_conforming, first_basis), (second_conforming, second_basis)) in cells.items():
            session.add(Conformance(organization_id=district.org.id, month=month, group="outpatient",
                                    basis=first_basis, conforming=first_conforming))
            session.add(Conformance(organization_id=second.org.id, month=month, group="outpatient",
                                    basis=second_basis, conforming=second_conforming))
    june = (await quality(app, client, "2022-06"))["districts"][0]
    july = (await quality(app, client, "2022-07"))["districts"][0]
    # 333,359 / 1,000,010 = 33.3356 %: 33.34 (from the first platform's printed 33.33 it would be 33.33);
    # 666,650 / 1,000,010 = 66.6643 %: 66.66 (from its printed 66.67 it would be 66.67).
    assert (june["outpatient_conformance_pct"], june["outpatient_conformance_basis"]) == ("33.34", 1_000_010)
    assert (july["outpatient_conformance_pct"], july["outpatient_conformance_basis"]) == ("66.66", 1_000_010)


@given(basis=st.integers(1, 10**9), data=st.data())
def test_a_rate_is_the_exact_share_rounded_half_up_to_two_decimals(basis: int, data: st.DataObject) -> None:
    from cityhealth.collection.quality import percentage

    conforming = data.draw(st.integers(0, basis))
    # Integer arithmetic only: hundredths of a percent, half up.
    hundredths = (conforming * 20000 + basis) // (2 * basis)
    assert percentage(conforming, basis) == f"{hundredths // 100}.{hundredths % 100:02d}"


@given(parts=st.lists(st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.integers(0, 10**6) | st.none()),
                      min_size=1, max_size=4))
def test_a_field_path_is_counted_with_its_list_positions_folded(parts: list[tuple[str, int | None]]) -> None:
    from cityhealth.collection.metrics import field_key

    path = ".".join(name if index is None else f"{name}[{index}]" for name, index in parts)
    folded = ".".join(name if index is None else f"{name}[]" for name, index in parts)
    assert field_key(path) == folded
