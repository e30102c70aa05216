"""The real-time path: per-record answers, bad input refused with nothing half-stored, idempotent storage."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection.models import DailyCount, Record, RecordVersion, RejectionCount
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from cityhealth.security.audit import Action
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Scope
from tests.collection.conftest import Unit, post_records, stored_count
from tests.factories.collection import ALL_FORMS, make_record
from tests.factories.security import headers_for, machine


def visit(unit: Unit, clock: SimulatedClock, rid: str = "v-1", **overrides: object) -> dict[str, object]:
    return make_record("outpatient_visit", unit.code, rid, clock.now() - timedelta(hours=2), **overrides)


async def rejection(response: httpx.Response, position: int = 1) -> dict[str, object]:
    record = response.json()["records"][position - 1]
    assert record["status"] == "rejected"
    return record["errors"][0]  # type: ignore[no-any-return]


async def test_every_form_accepts_a_valid_record(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    for form in ALL_FORMS:
        record = make_record(form, hospital.code, f"{form}-1", clock.now() - timedelta(hours=1))
        response = await post_records(client, hospital, form, [record])
        assert response.status_code == 200, response.text
        assert response.json()["records"][0]["status"] == "accepted", response.json()


async def test_resend_is_a_duplicate_and_changes_no_counter(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = visit(hospital, clock)
    assert (await post_records(client, hospital, "outpatient_visit", [record])).json()["counts"]["accepted"] == 1
    again = await post_records(client, hospital, "outpatient_visit", [record])
    assert again.json()["records"][0]["status"] == "duplicate"
    assert await stored_count(database) == 1
    async with database.transaction() as session:
        counts = (await session.execute(select(DailyCount))).scalar_one()
    assert (counts.received, counts.accepted, counts.duplicate) == (2, 1, 1)


async def test_amend_keeps_the_previous_version_and_revoke_ends_the_record(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock)])
    clock.advance(timedelta(minutes=1))
    amended = await post_records(
        client, hospital, "outpatient_visit", [visit(hospital, clock, action=2, doctor_name="周医生")]
    )
    assert amended.json()["records"][0] == {"position": 1, "record_id": "v-1", "status": "amended", "version": 2}
    revoked = await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock, action=3)])
    assert revoked.json()["records"][0]["status"] == "revoked"
    after = await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock, action=2)])
    assert (await rejection(after))["rule"] == "record.revoked"
    async with database.transaction() as session:
        versions = (await session.execute(select(RecordVersion).order_by(RecordVersion.version))).scalars().all()
        current = (await session.execute(select(Record))).scalar_one()
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].received_at < versions[1].received_at
    assert (current.version, current.action) == (3, 3)


async def test_amend_of_an_unknown_record_is_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock, action=2)])
    assert (await rejection(response))["rule"] == "action.no_original"
    assert await stored_count(database) == 0


async def test_malformed_json_is_refused_whole(client: httpx.AsyncClient, hospital: Unit, database: Database) -> None:
    response = await client.post(
        "/api/collection/forms/outpatient_visit/records",
        content=b'[{"a": 1,',
        headers={**hospital.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert (response.json()["rule"], response.json()["field"]) == ("json.malformed", "body")
    assert await stored_count(database) == 0


async def test_ndjson_batches_are_accepted(client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock) -> None:
    import orjson

    body = b"\n".join(orjson.dumps(visit(hospital, clock, f"v-{i}")) for i in range(3))
    response = await client.post(
        "/api/collection/forms/outpatient_visit/records",
        content=body,
        headers={**hospital.headers, "content-type": "application/x-ndjson"},
    )
    assert response.json()["counts"]["accepted"] == 3


async def test_unknown_form_is_not_found(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await post_records(client, hospital, "no_such_form", [visit(hospital, clock)])
    assert response.status_code == 404
    assert (response.json()["code"], response.json()["field"]) == ("unknown_form", "form")
    assert await stored_count(database) == 0


async def test_unknown_organization_code_is_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await post_records(
        client, hospital, "outpatient_visit", [{**visit(hospital, clock), "org_code": "NOPE"}]
    )
    error = await rejection(response)
    assert (error["rule"], error["field"]) == ("org_code.unknown", "org_code")
    assert await stored_count(database) == 0


async def test_client_without_a_registered_organization_is_forbidden(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=9999, client_id="ghost"))
    response = await client.post(
        "/api/collection/forms/outpatient_visit/records", json=[visit(hospital, clock)], headers=headers
    )
    assert response.status_code == 403
    assert response.json()["code"] == "organization_unknown"
    assert await stored_count(database) == 0


async def test_uploading_as_another_organization_is_forbidden_and_audited(
    client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    records = [visit(hospital, clock, "v-own"), visit(other_hospital, clock, "v-theirs")]
    response = await post_records(client, hospital, "outpatient_visit", records)
    assert response.status_code == 403
    assert (response.json()["rule"], response.json()["field"]) == ("org_code.not_sender", "org_code")
    assert await stored_count(database) == 0
    async with database.transaction() as session:
        denials = (await session.execute(select(AuditEvent).where(AuditEvent.action == Action.DENIED.value))).scalars()
        assert any(event.resource_type == "collection_upload" for event in denials)


async def test_duplicate_ids_in_one_batch_are_all_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    records = [
        visit(hospital, clock, "same"),
        visit(hospital, clock, "same", doctor_name="另一位"),
        visit(hospital, clock, "fine"),
    ]
    body = (await post_records(client, hospital, "outpatient_visit", records)).json()
    assert [r["status"] for r in body["records"]] == ["rejected", "rejected", "accepted"]
    assert body["records"][0]["errors"][0]["rule"] == "record_id.duplicate_in_batch"
    assert await stored_count(database) == 1


async def test_code_outside_its_table_is_rejected_naming_the_table(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("discharge", hospital.code, "d-1", clock.now() - timedelta(hours=1), rh_code="5")
    error = await rejection(await post_records(client, hospital, "discharge", [record]))
    assert (error["rule"], error["field"], error["value"]) == ("code.not_in_table", "rh_code", "5")
    assert "CV04.50.020" in str(error["message"])
    assert "CV04.50.020" in str(error["message_zh"])
    assert await stored_count(database) == 0


async def test_name_that_does_not_match_its_code_is_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    error = await rejection(
        await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock, patient_type_name="急诊")])
    )
    assert (error["rule"], error["field"]) == ("code.name_mismatch", "patient_type_name")
    assert await stored_count(database) == 0


async def test_event_in_the_future_is_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("outpatient_visit", hospital.code, "v-1", clock.now() + timedelta(hours=1))
    error = await rejection(await post_records(client, hospital, "outpatient_visit", [record]))
    assert (error["rule"], error["field"]) == ("event_time.future", "visit_time")
    assert await stored_count(database) == 0


async def test_id_number_with_a_bad_check_character_is_rejected_masked(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    record = make_record("patient_master_index", hospital.code, "p-1", clock.now() - timedelta(hours=1))
    number = record["id_number"]
    record["id_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    response = await post_records(client, hospital, "patient_master_index", [record])
    error = await rejection(response)
    assert (error["rule"], error["field"]) == ("id_number.check_char", "id_number")
    assert number[6:14] not in response.text  # never the whole number back
    assert await stored_count(database) == 0


async def test_id_and_mobile_numbers_in_other_fields_come_back_masked(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    id_number, mobile = make_resident_id("320102", date(1985, 4, 12), 37), "13912345678"
    record = make_record("patient_master_index", hospital.code, "p-1", clock.now() - timedelta(hours=1),
                         ethnicity_code=id_number, marital_name=f"手机{mobile}")
    response = await post_records(client, hospital, "patient_master_index", [record])
    errors = {error["field"]: error for error in response.json()["records"][0]["errors"]}
    assert (errors["ethnicity_code"]["rule"], errors["ethnicity_code"]["value"]) == (
        "length.max", mask_resident_id(id_number))
    assert (errors["marital_name"]["rule"], errors["marital_name"]["value"]) == (
        "code.name_mismatch", f"手机{mask_phone(mobile)}")
    assert id_number not in response.text
    assert mobile not in response.text


async def test_id_number_against_sex_is_checked(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    record = make_record("patient_master_index", hospital.code, "p-1", clock.now() - timedelta(hours=1))
    other = "2" if record["sex_code"] == "1" else "1"
    record.update(sex_code=other, sex_name="女" if other == "2" else "男")
    error = await rejection(await post_records(client, hospital, "patient_master_index", [record]))
    assert error["rule"] == "id_number.sex_mismatch"


async def test_discharge_before_admission_is_rejected(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    record = make_record(
        "discharge", hospital.code, "d-1", clock.now() - timedelta(hours=1), admission_time="20220616080000"
    )
    error = await rejection(await post_records(client, hospital, "discharge", [record]))
    assert (error["rule"], error["field"]) == ("time.order", "discharge_time")


async def test_negative_amount_is_rejected(client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock) -> None:
    record = make_record("settlement", hospital.code, "s-1", clock.now() - timedelta(hours=1), total_amount=-1)
    errors = (await post_records(client, hospital, "settlement", [record])).json()["records"][0]["errors"]
    assert {"range.min"} <= {e["rule"] for e in errors}


async def test_icd10_shape_and_loaded_membership(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, tmp_path: object
) -> None:
    from pathlib import Path

    from cityhealth.collection import service

    bad_shape = make_record(
        "outpatient_diagnosis", hospital.code, "g-1", clock.now() - timedelta(hours=1), diagnosis_code="HYPERT"
    )
    error = await rejection(await post_records(client, hospital, "outpatient_diagnosis", [bad_shape]))
    assert error["rule"] == "icd10.shape"
    codes = Path(str(tmp_path)) / "icd10.csv"
    codes.write_text("code,name\nJ18.900,肺炎\n", encoding="utf-8")
    async with database.transaction() as session:
        await service.load_codes(session, clock, "ICD-10", codes)
    unlisted = make_record("outpatient_diagnosis", hospital.code, "g-2", clock.now() - timedelta(hours=1))
    error = await rejection(await post_records(client, hospital, "outpatient_diagnosis", [unlisted]))
    assert (error["rule"], error["field"]) == ("code.not_in_table", "diagnosis_code")
    listed = make_record(
        "outpatient_diagnosis",
        hospital.code,
        "g-3",
        clock.now() - timedelta(hours=1),
        diagnosis_code="J18.900",
        diagnosis_name="肺炎",
    )
    assert (await post_records(client, hospital, "outpatient_diagnosis", [listed])).json()["counts"]["accepted"] == 1


async def test_rejections_are_counted_by_rule_and_field(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    body = (
        await post_records(
            client,
            hospital,
            "outpatient_visit",
            [visit(hospital, clock, "a", patient_type_code="7"), visit(hospital, clock, "b")],
        )
    ).json()
    assert body["rejections_by_rule"] == {"code.not_in_table": 1}
    assert body["rejections_by_field"] == {"patient_type_code": 1}
    async with database.transaction() as session:
        row = (await session.execute(select(RejectionCount))).scalar_one()
    assert (row.rule, row.field, row.count) == ("code.not_in_table", "patient_type_code", 1)


async def test_dry_run_stores_nothing(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    response = await post_records(client, hospital, "outpatient_visit", [visit(hospital, clock)], dry_run="true")
    assert response.json()["records"][0]["status"] == "accepted"
    assert await stored_count(database) == 0


async def test_more_than_a_thousand_records_are_refused(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    records = [visit(hospital, clock, f"v-{i}") for i in range(1001)]
    response = await post_records(client, hospital, "outpatient_visit", records)
    assert (response.status_code, response.json()["rule"]) == (422, "batch.max_records")
    assert await stored_count(database) == 0


@pytest.mark.parametrize("chunked", [False, True])
async def test_two_gigabyte_body_is_refused_unread(
    client: httpx.AsyncClient, hospital: Unit, database: Database, chunked: bool
) -> None:
    sent = 0

    async def body():  # type: ignore[no-untyped-def]
        nonlocal sent
        chunk = b" " * (1 << 20)
        for _ in range(2048):
            sent += len(chunk)
            yield chunk

    headers = {**hospital.headers, "content-type": "application/json"}
    if not chunked:
        headers["content-length"] = str(2 << 30)
    response = await client.post("/api/collection/forms/outpatient_visit/records", content=body(), headers=headers)
    assert response.status_code == 413
    assert sent < 64 << 20  # refused long before 2 GB were read
    assert await stored_count(database) == 0


async def test_upload_needs_the_upload_scope(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    headers = await headers_for(app, machine(Scope.COLLECTION_READ, organization_id=hospital.org.id))
    response = await client.post(
        "/api/collection/forms/outpatient_visit/records", json=[visit(hospital, clock)], headers=headers
    )
    assert response.status_code == 403


async def test_standard_is_published_as_data_and_page(client: httpx.AsyncClient, hospital: Unit) -> None:
    document = (await client.get("/api/collection/standard", headers=hospital.headers)).json()
    forms = {form["code"]: form for form in document["forms"]}
    assert sorted(f["number"] for f in forms.values() if f["number"]) == list(range(1, 12))
    sex = next(t for t in document["code_tables"] if t["id"] == "GB/T 2261.1")
    assert {c["code"]: c["name"] for c in sex["codes"]} == {
        "0": "未知的性别",
        "1": "男",
        "2": "女",
        "9": "未说明的性别",
    }
    assert "code.name_mismatch" in document["rules"]
    page = await client.get("/api/collection/standard.html", headers=hospital.headers)
    assert page.status_code == 200
    assert "门急诊就诊" in page.text


@pytest.mark.parametrize("body", [
    b'[{"record_id": NaN}]',
    b'[{"record_id": "r-1", "visit_fee": Infinity}]',
    b'[{"record_id": "r-1", "visit_fee": 1e400}]',
    b'[{"record_id": "\\ud800"}]',
])
async def test_a_batch_outside_rfc_8259_is_refused_by_the_routes_own_strict_parser(
    client: httpx.AsyncClient, hospital: Unit, body: bytes
) -> None:
    # The strict-JSON middleware leaves this hot path to its own parser (app.SELF_PARSED_PATHS): it must refuse
    # exactly what the middleware would, with the same problem.
    response = await client.post("/api/collection/forms/outpatient_visit/records", content=body,
                                 headers={**hospital.headers, "content-type": "application/json"})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["code"], problem["field"], problem["rule"]) == ("malformed_body", "body", "json.malformed")


async def test_a_code_table_loaded_inside_a_transaction_applies_to_its_later_batches(
    app: FastAPI, hospital: Unit, clock: SimulatedClock, database: Database, tmp_path: object
) -> None:
    # A transaction reads the code tables' generations once (with the unit's lock); a table replaced in that
    # same transaction must still reach the batches decided after it.
    from pathlib import Path

    from cityhealth.collection import service
    from cityhealth.collection.api import runtime
    from cityhealth.collection.ingest import InputRow, ingest
    from cityhealth.collection.repository.organizations import organization_by_id

    collector = runtime(app)[0]
    codes = Path(str(tmp_path)) / "icd10.csv"
    codes.write_text("code,name\nJ18.900,肺炎\n", encoding="utf-8")
    at = clock.now() - timedelta(hours=1)
    async with database.transaction() as session:
        sender = await organization_by_id(session, hospital.org.id)
        assert sender is not None

        def batch(record_id: str) -> list[InputRow]:
            record = make_record("outpatient_diagnosis", hospital.code, record_id, at)
            return [InputRow(1, record=record, form="outpatient_diagnosis")]

        before = await ingest(session, collector, sender, batch("t-1"), received_at=clock.now())
        await service.load_codes(session, clock, "ICD-10", codes)
        after = await ingest(session, collector, sender, batch("t-2"), received_at=clock.now())
    assert before.counts()["accepted"] == 1
    [outcome] = after.outcomes
    assert [error.rule for error in outcome.errors] == ["code.not_in_table"]
