"""A unit's drill-down: its days and rejections from the aggregates, its rejected records page by page."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.collection import quality, service
from cityhealth.collection.drilldown import RejectedRecord, ShownError
from cityhealth.collection.quality import RuleCount, UnitDay
from cityhealth.db.engine import Database
from cityhealth.errors import Forbidden, NotFound, ValidationFailed
from cityhealth.registry.identifiers import make_resident_id, mask_resident_id
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal, Role, Scope
from tests.collection.conftest import Unit, post_records, wait_for_job
from tests.factories.collection import make_record
from tests.factories.security import headers_for, machine, staff

MONTH = "2022-06"
OPERATOR = staff(Role.DATA_QUALITY_OPERATOR, user_id=7)
VISIT_NO_REQUIRED = ShownError(
    "required", "visit_no", "visit number (visit_no) is required", "门(急)诊号（visit_no）为必填项"
)
PATIENT_TYPE_UNKNOWN = ShownError(
    "code.not_in_table",
    "patient_type_code",
    "patient type (patient_type_code): code 7 is not in table CV09.00.404",
    "患者类型代码（patient_type_code）：代码 7 不在值域 CV09.00.404 中",
)


def visit(unit: Unit, record_id: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    return make_record("outpatient_visit", unit.code, record_id, at, **overrides)


def row(form: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"form": form, **record}


async def upload_job(
    app: FastAPI, client: httpx.AsyncClient, unit: Unit, rows: list[dict[str, Any]], **params: Any
) -> int:
    """A bulk NDJSON job, processed to the end; its id."""
    body = b"".join(orjson.dumps(item) + b"\n" for item in rows)
    response = await client.post(
        "/api/collection/jobs",
        content=body,
        params=params,
        headers={**unit.headers, "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    await wait_for_job(app, job_id)
    return job_id


async def records(
    database: Database,
    clock: SimulatedClock,
    unit: Unit,
    month: str = MONTH,
    *,
    principal: Principal = OPERATOR,
    rule: str | None = None,
    after: tuple[int, int] | None = None,
    limit: int = 100,
) -> list[RejectedRecord]:
    async with database.transaction() as session:
        return await service.rejected_records(
            session, clock, principal, unit.org.id, month, rule=rule, after=after, limit=limit
        )


def positions(found: list[RejectedRecord]) -> list[tuple[int, int]]:
    return [(item.job_id, item.position) for item in found]


async def move_clock(app: FastAPI, clock: SimulatedClock, unit: Unit, moment: datetime) -> None:
    """Move the clock on, with a fresh token for the unit (the old one has expired by then)."""
    clock.set(moment)
    unit.headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=unit.org.id))


def nanjing(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BUSINESS_TZ)


# --- days and rejections (the public aggregates) ----------------------------------------------------------


async def test_unit_days_sum_the_forms_of_each_upload_day_by_outcome(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    first, second = visit(hospital, "v-1", at), visit(hospital, "v-2", at)
    patient = make_record("patient_master_index", hospital.code, "p-1", at)
    await post_records(client, hospital, "outpatient_visit", [first, second, visit(hospital, "v-3", at, visit_no=None)])
    await post_records(client, hospital, "patient_master_index", [patient])
    await post_records(client, hospital, "workload_daily", [make_record("workload_daily", hospital.code, "w-1", at)])
    await move_clock(app, clock, hospital, clock.now() + timedelta(days=1))
    await post_records(client, hospital, "outpatient_visit", [first, {**second, "action": 2, "doctor_name": "周"}])
    await post_records(client, hospital, "patient_master_index", [{**patient, "action": 3}])
    clock.advance(timedelta(days=2))  # nothing on the 17th and 18th

    async with database.transaction() as session:
        days = await quality.unit_days(session, hospital.org.id, MONTH)
        report = await quality.quality_report(session, MONTH)
    assert days == [
        UnitDay(date(2022, 6, 15), received=4, accepted=3, amended=0, revoked=0, duplicate=0, rejected=1),
        UnitDay(date(2022, 6, 16), received=3, accepted=0, amended=1, revoked=1, duplicate=1, rejected=0),
    ]
    assert [day.stored for day in days] == [3, 2]
    # The workload report is a feed of its own: the days add up to the report's uploaded records.
    assert sum(day.received for day in days) == report["hospitals"][0]["uploaded_records"] == 7


async def test_unit_rejections_count_each_form_rule_and_field_most_frequent_first(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    await post_records(
        client,
        hospital,
        "outpatient_visit",
        [
            visit(hospital, "b-1", at, visit_no=None),
            visit(hospital, "b-2", at, visit_no=None),
            visit(hospital, "b-3", at, patient_type_code="7"),
        ],
    )
    await move_clock(app, clock, hospital, clock.now() + timedelta(days=1))
    await upload_job(
        app,
        client,
        hospital,
        [
            row("outpatient_visit", visit(hospital, "b-4", at, visit_no=None)),
            row(
                "patient_master_index",
                make_record("patient_master_index", hospital.code, "p-1", at, name=["张三"], phone="1381234567"),
            ),
        ],
    )

    async with database.transaction() as session:
        found = await quality.unit_rejections(session, hospital.org.id, MONTH)
    assert found == [
        RuleCount("outpatient_visit", "required", "visit_no", 3),
        RuleCount("outpatient_visit", "code.not_in_table", "patient_type_code", 1),
        RuleCount("patient_master_index", "phone.format", "phone", 1),
        RuleCount("patient_master_index", "type.string", "name", 1),
    ]


async def test_a_unit_without_uploads_has_no_days_rejections_or_records(
    app: FastAPI,
    client: httpx.AsyncClient,
    hospital: Unit,
    other_hospital: Unit,
    clock: SimulatedClock,
    database: Database,
) -> None:
    at = clock.now() - timedelta(hours=1)
    await post_records(client, hospital, "outpatient_visit", [visit(hospital, "b-1", at, visit_no=None)])
    await upload_job(app, client, hospital, [row("outpatient_visit", visit(hospital, "b-2", at, visit_no=None))])

    async with database.transaction() as session:
        assert await quality.unit_days(session, other_hospital.org.id, MONTH) == []
        assert await quality.unit_rejections(session, other_hospital.org.id, MONTH) == []
        assert len(await quality.unit_days(session, hospital.org.id, MONTH)) == 1
    assert await records(database, clock, other_hospital) == []
    assert len(await records(database, clock, hospital)) == 1


async def test_drill_down_reads_the_asked_month_by_asia_shanghai_upload_days(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await move_clock(app, clock, hospital, nanjing(2022, 6, 30, 23, 30))  # 15:30 UTC: June in Nanjing
    june = await upload_job(
        app,
        client,
        hospital,
        [row("outpatient_visit", visit(hospital, "june", clock.now() - timedelta(hours=1), visit_no=None))],
    )
    await move_clock(app, clock, hospital, nanjing(2022, 7, 1, 0, 30))  # 16:30 UTC on 30 June: July
    july = await upload_job(
        app,
        client,
        hospital,
        [row("outpatient_visit", visit(hospital, "july", clock.now() - timedelta(hours=1), patient_type_code="7"))],
    )

    async with database.transaction() as session:
        june_days = await quality.unit_days(session, hospital.org.id, "2022-06")
        july_rules = await quality.unit_rejections(session, hospital.org.id, "2022-07")
    assert [(day.day, day.rejected) for day in june_days] == [(date(2022, 6, 30), 1)]
    assert july_rules == [RuleCount("outpatient_visit", "code.not_in_table", "patient_type_code", 1)]
    assert positions(await records(database, clock, hospital, "2022-06")) == [(june, 1)]
    assert positions(await records(database, clock, hospital, "2022-07")) == [(july, 1)]


async def test_months_with_data_are_the_months_with_uploads_or_workload(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await post_records(client, hospital, "outpatient_visit", [visit(hospital, "v-1", clock.now())])
    await move_clock(app, clock, hospital, nanjing(2022, 8, 1, 9))
    # July's last workload report arrives in August: the report's day is July's, and it is no upload.
    report = make_record("workload_daily", hospital.code, "w-0731", nanjing(2022, 7, 31, 20))
    assert (await post_records(client, hospital, "workload_daily", [report])).status_code == 200

    async with database.transaction() as session:
        assert await quality.months_with_data(session, "2022-05", "2022-09") == {"2022-06", "2022-07"}
        assert await quality.months_with_data(session, "2022-01", "2022-05") == set()
        assert await quality.months_with_data(session, "2022-07", "2022-12") == {"2022-07"}


# --- rejected records (record-level, audited) -------------------------------------------------------------


async def test_rejected_records_page_by_job_and_position(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    first = await upload_job(
        app,
        client,
        hospital,
        [
            row("outpatient_visit", visit(hospital, f"a-{n}", at, **({} if n in (1, 4) else {"visit_no": None})))
            for n in range(1, 6)
        ],
    )
    second = await upload_job(
        app,
        client,
        hospital,
        [
            row("outpatient_visit", visit(hospital, "b-1", at, patient_type_code="7")),
            row("outpatient_visit", visit(hospital, "b-2", at)),
        ],
    )

    page = await records(database, clock, hospital, limit=2)
    assert page == [
        RejectedRecord(first, 2, "outpatient_visit", "a-2", [VISIT_NO_REQUIRED]),
        RejectedRecord(first, 3, "outpatient_visit", "a-3", [VISIT_NO_REQUIRED]),
    ]
    page = await records(database, clock, hospital, after=(first, 3), limit=2)
    assert page == [
        RejectedRecord(first, 5, "outpatient_visit", "a-5", [VISIT_NO_REQUIRED]),
        RejectedRecord(second, 1, "outpatient_visit", "b-1", [PATIENT_TYPE_UNKNOWN]),
    ]
    assert await records(database, clock, hospital, after=(second, 1), limit=2) == []


async def test_rejected_records_filtered_by_rule_keep_all_their_errors(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    job = await upload_job(
        app,
        client,
        hospital,
        [
            row("outpatient_visit", visit(hospital, "r-1", at, visit_no=None)),
            row("outpatient_visit", visit(hospital, "r-2", at, patient_type_code="7")),
            row("outpatient_visit", visit(hospital, "r-3", at, visit_no=None, patient_type_code="7")),
        ],
    )

    found = await records(database, clock, hospital, rule="code.not_in_table")
    assert positions(found) == [(job, 2), (job, 3)]
    assert {error.rule for error in found[1].errors} == {"required", "code.not_in_table"}
    assert positions(await records(database, clock, hospital, rule="required", after=(job, 1))) == [(job, 3)]
    assert await records(database, clock, hospital, rule="required.one_of") == []


async def test_rejected_records_leave_out_real_time_batches_and_dry_runs(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    await post_records(client, hospital, "outpatient_visit", [visit(hospital, "rt", at, visit_no=None)])
    await upload_job(
        app, client, hospital, [row("outpatient_visit", visit(hospital, "dry", at, visit_no=None))], dry_run="true"
    )
    job = await upload_job(app, client, hospital, [row("outpatient_visit", visit(hospital, "bulk", at, visit_no=None))])

    assert [(item.job_id, item.record_id) for item in await records(database, clock, hospital)] == [(job, "bulk")]
    async with database.transaction() as session:  # the real-time rejection is counted all the same
        assert await quality.unit_rejections(session, hospital.org.id, MONTH) == [
            RuleCount("outpatient_visit", "required", "visit_no", 2)
        ]


async def test_rejected_records_show_no_personal_values(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    id_number = make_resident_id("320102", date(1990, 3, 7), 123)
    wrong_check = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    patient = make_record(
        "patient_master_index",
        hospital.code,
        id_number,
        at,  # a sender keyed it by ID number
        name=["张三"],
        phone="1381234567",
        id_number=wrong_check,
    )
    job = await upload_job(app, client, hospital, [row("patient_master_index", patient), row(id_number, patient)])

    found = await records(database, clock, hospital)
    assert positions(found) == [(job, 1), (job, 2)]
    assert found[0].record_id == mask_resident_id(id_number)
    by_rule = {error.rule: error for error in found[0].errors}
    assert by_rule["type.string"] == ShownError(
        "type.string", "name", "name (name) must be text, not ******", "姓名（name）应为文本，实际为 ******"
    )
    assert by_rule["id_number.check_char"].message == (
        f"ID number {mask_resident_id(wrong_check)}: the check character does not match"
    )
    assert found[1].form is None  # the unknown form named by an ID number is masked in the message too
    assert found[1].errors[0].message == f"unknown form {mask_resident_id(id_number)}"
    shown = repr(found)
    for secret in (id_number, wrong_check, "1381234567", "张三"):
        assert secret not in shown


async def test_rejected_records_mask_legacy_id_and_mobile_numbers_in_any_field(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    legacy_id, mobile = "320102850412037", "13912345678"  # a 15-digit ID number of the first generation
    patient = make_record("patient_master_index", hospital.code, "p-1", clock.now() - timedelta(hours=1),
                          marital_name=f"旧证{legacy_id}", ethnicity_name=mobile)
    await upload_job(app, client, hospital, [row("patient_master_index", patient)])

    [found] = await records(database, clock, hospital)
    by_field = {error.field: error for error in found.errors}
    assert [by_field[name].rule for name in ("marital_name", "ethnicity_name")] == ["code.name_mismatch"] * 2
    assert "name 旧证320102******037 does not match" in by_field["marital_name"].message
    assert "名称 旧证320102******037 " in by_field["marital_name"].message_zh
    assert "name 139****5678 does not match" in by_field["ethnicity_name"].message
    assert legacy_id not in repr(found)
    assert mobile not in repr(found)


async def test_rejected_records_read_is_audited(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    at = clock.now() - timedelta(hours=1)
    job = await upload_job(
        app, client, hospital, [row("outpatient_visit", visit(hospital, f"a-{n}", at, visit_no=None)) for n in range(3)]
    )

    await records(database, clock, hospital, rule="required", after=(job, 1))
    async with database.transaction() as session:
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.resource_type == "collection_job_rejections")))
            .scalars()
            .all()
        )
    assert [(event.action, event.actor, event.resource_id, event.outcome, event.detail) for event in events] == [
        ("list", "staff:7", str(hospital.org.id), "success", f"month=2022-06 rule=required after={job}:1 rows=2")
    ]


async def test_rejected_records_need_collection_read_and_the_callers_own_unit(
    app: FastAPI,
    client: httpx.AsyncClient,
    hospital: Unit,
    other_hospital: Unit,
    clock: SimulatedClock,
    database: Database,
) -> None:
    at = clock.now() - timedelta(hours=1)
    job = await upload_job(app, client, hospital, [row("outpatient_visit", visit(hospital, "b", at, visit_no=None))])

    with pytest.raises(Forbidden):
        await records(
            database, clock, hospital, principal=machine(Scope.COLLECTION_UPLOAD, organization_id=hospital.org.id)
        )
    with pytest.raises(NotFound):
        await records(
            database, clock, hospital, principal=machine(Scope.COLLECTION_READ, organization_id=other_hospital.org.id)
        )
    own = machine(Scope.COLLECTION_READ, organization_id=hospital.org.id)
    assert positions(await records(database, clock, hospital, principal=own)) == [(job, 1)]


@pytest.mark.parametrize("limit", [0, 1001])
async def test_rejected_records_refuse_a_page_size_out_of_range(
    database: Database, clock: SimulatedClock, hospital: Unit, limit: int
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await records(database, clock, hospital, limit=limit)
    assert raised.value.field == "limit"
