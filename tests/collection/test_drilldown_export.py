"""The rejection export of a bulk job, the loaded code tables and the published standard."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.collection import service
from cityhealth.collection.models import CodeEntry, CodeTableLoad
from cityhealth.collection.rules import RULES
from cityhealth.collection.standard import load_standard
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from cityhealth.security.audit import Action
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Role, Scope
from tests.collection.conftest import Unit, post_records, wait_for_job
from tests.factories.collection import make_record
from tests.factories.security import headers_for, machine, staff


async def bulk(app: FastAPI, client: httpx.AsyncClient, unit: Unit, rows: list[dict[str, Any]]) -> int:
    body = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**unit.headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    await wait_for_job(app, job_id)
    return job_id


async def export(client: httpx.AsyncClient, unit: Unit, job_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=unit.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def row(form: str, unit: Unit, rid: str, clock: SimulatedClock, **overrides: Any) -> dict[str, Any]:
    return {"form": form, **make_record(form, unit.code, rid, clock.now() - timedelta(hours=1), **overrides)}


# --- the rejection export ----------------------------------------------------------------------------------


async def test_the_export_lists_each_rejected_row_with_its_position_and_errors(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    rows = [row("outpatient_visit", hospital, "ok", clock),
            row("outpatient_visit", hospital, "bad", clock, patient_type_code="7"),
            row("settlement", hospital, "s-1", clock, self_paid_amount=99999)]
    job_id = await bulk(app, client, hospital, rows)
    exported = await export(client, hospital, job_id)
    assert [(item["position"], item["form"], item["record_id"]) for item in exported] == [
        (2, "outpatient_visit", "bad"), (3, "settlement", "s-1")]
    assert [(e["rule"], e["field"], e["value"]) for e in exported[0]["errors"]] == [
        ("code.not_in_table", "patient_type_code", "7")]
    assert [(e["rule"], e["field"]) for e in exported[1]["errors"]] == [("amount.exceeds", "self_paid_amount")]
    assert exported[0]["row"]["patient_type_code"] == "7"


async def test_a_job_without_rejections_exports_nothing(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    job_id = await bulk(app, client, hospital, [row("outpatient_visit", hospital, "ok", clock)])
    assert await export(client, hospital, job_id) == []


async def test_the_export_pages_past_a_thousand_rows_in_order(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    rows = [row("outpatient_visit", hospital, f"r-{i}", clock, visit_no=None) for i in range(1203)]
    job_id = await bulk(app, client, hospital, rows)
    exported = await export(client, hospital, job_id)
    assert [item["position"] for item in exported] == list(range(1, 1204))


async def test_unreadable_lines_and_unknown_forms_are_exported_without_a_form(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    body = (orjson.dumps(row("outpatient_visit", hospital, "ok", clock)) + b"\n{broken\n"
            + orjson.dumps({"form": "nope", "record_id": "x"}) + b"\n")
    response = await client.post("/api/collection/jobs", content=body,
                                 headers={**hospital.headers, "content-type": "application/x-ndjson"})
    job_id = response.json()["id"]
    await wait_for_job(app, job_id)
    exported = await export(client, hospital, job_id)
    assert [(item["position"], item["form"], item["errors"][0]["rule"]) for item in exported] == [
        (2, None, "json.malformed"), (3, None, "form.unknown")]


async def test_personal_numbers_leave_the_export_masked(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    number = make_resident_id("320102", date(1985, 4, 12), 37)
    mobile = "13912345678"
    bad = row("patient_master_index", hospital, number, clock, phone=mobile, sex_code="7")
    job_id = await bulk(app, client, hospital, [bad])
    response = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=hospital.headers)
    exported = orjson.loads(response.content.splitlines()[0])
    assert exported["record_id"] == mask_resident_id(number)
    assert exported["row"]["phone"] == mask_phone(mobile)
    assert number not in response.text
    assert mobile not in response.text


async def test_the_export_is_audited_as_an_export_of_that_job(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database
) -> None:
    job_id = await bulk(app, client, hospital, [row("outpatient_visit", hospital, "bad", clock, visit_no=None)])
    await export(client, hospital, job_id)
    async with database.transaction() as session:
        events = (await session.execute(select(AuditEvent).where(
            AuditEvent.resource_type == "collection_job_rejections"))).scalars().all()
    assert [(e.action, e.resource_id) for e in events] == [(Action.EXPORT.value, str(job_id))]


async def test_an_operator_may_export_any_units_rejections(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    job_id = await bulk(app, client, hospital, [row("outpatient_visit", hospital, "bad", clock, visit_no=None)])
    operator = await headers_for(app, staff(Role.DATA_QUALITY_OPERATOR, user_id=7))
    response = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=operator)
    assert response.status_code == 200
    assert [orjson.loads(line)["record_id"] for line in response.content.splitlines()] == ["bad"]


async def test_an_unknown_job_and_another_units_job_both_look_absent(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, other_hospital: Unit, clock: SimulatedClock
) -> None:
    job_id = await bulk(app, client, hospital, [row("outpatient_visit", hospital, "bad", clock, visit_no=None)])
    theirs = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=other_hospital.headers)
    missing = await client.get(f"/api/collection/jobs/{job_id + 1000}/rejections", headers=hospital.headers)
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json()["code"] == missing.json()["code"] == "job_not_found"


async def test_a_caller_without_a_collection_scope_is_refused_the_export(
    app: FastAPI, client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock
) -> None:
    job_id = await bulk(app, client, hospital, [row("outpatient_visit", hospital, "bad", clock, visit_no=None)])
    headers = await headers_for(app, machine(Scope.BOOKING_WRITE, organization_id=hospital.org.id, client_id="b"))
    response = await client.get(f"/api/collection/jobs/{job_id}/rejections", headers=headers)
    assert response.status_code == 403


# --- loaded code tables ------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "codes.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_a_code_file_skips_its_header_and_reads_both_separators(tmp_path: Path) -> None:
    path = write(tmp_path, "编码,名称\nJ18.900,肺炎\nI10\t特发性(原发性)高血压\n\n\"E11.900\",\"2型糖尿病\"\n")
    assert service.read_code_file(path, "ICD-10") == {
        "J18.900": "肺炎", "I10": "特发性(原发性)高血压", "E11.900": "2型糖尿病"}


def test_a_code_file_in_gb18030_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "36.06,冠状动脉支架置入\n", encoding="gb18030")
    assert service.read_code_file(path, "ICD-9-CM-3") == {"36.06": "冠状动脉支架置入"}


def test_a_code_file_with_a_misshapen_code_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "code,name\nJ18.900,肺炎\nHYPER,高血压\n")
    with pytest.raises(ValidationFailed) as raised:
        service.read_code_file(path, "ICD-10")
    assert (raised.value.field, raised.value.value, raised.value.rule) == ("code", "HYPER", "code.shape")
    assert "line 3" in raised.value.message


def test_a_code_without_a_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.read_code_file(write(tmp_path, "J18.900,\n"), "ICD-10")
    assert (raised.value.field, raised.value.rule) == ("name", "required")


def test_a_file_with_no_codes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.read_code_file(write(tmp_path, "code,name\n"), "ICD-10")
    assert raised.value.rule == "body.empty"


def test_only_the_loadable_tables_may_be_loaded(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.read_code_file(write(tmp_path, "1,男\n"), "GB/T 2261.1")
    assert (raised.value.field, raised.value.value) == ("table", "GB/T 2261.1")


@given(codes=st.dictionaries(st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{3})?", fullmatch=True),
                             st.text(alphabet="肺炎高血压糖尿病", min_size=1, max_size=6), min_size=1, max_size=30))
def test_a_written_code_file_reads_back_to_its_codes(codes: dict[str, str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "codes.csv"
        path.write_text("".join(f"{code},{name}\n" for code, name in codes.items()), encoding="utf-8")
        assert service.read_code_file(path, "ICD-10") == codes


async def test_reloading_a_table_replaces_it_whole_and_moves_its_generation(
    database: Database, clock: SimulatedClock, tmp_path: Path
) -> None:
    async with database.transaction() as session:
        first = await service.load_codes(session, clock, "ICD-10", write(tmp_path, "J18.900,肺炎\nI10,高血压\n"))
    async with database.transaction() as session:
        replacement = write(tmp_path, "E11.900,2型糖尿病\n", name="b.csv")
        second = await service.load_codes(session, clock, "ICD-10", replacement)
    assert (first, second) == ((2, 1), (1, 2))
    async with database.transaction() as session:
        entries = (await session.execute(select(CodeEntry.code).where(CodeEntry.table_id == "ICD-10"))).scalars()
        assert list(entries) == ["E11.900"]
        load = (await session.execute(select(CodeTableLoad))).scalar_one()
    assert (load.table_id, load.generation, load.entries, load.source) == ("ICD-10", 2, 1, "b.csv")


async def test_the_next_batch_is_checked_against_a_reloaded_table(
    client: httpx.AsyncClient, hospital: Unit, clock: SimulatedClock, database: Database, tmp_path: Path
) -> None:
    async with database.transaction() as session:
        await service.load_codes(session, clock, "ICD-9-CM-3", write(tmp_path, "47.09,阑尾切除术\n"))
    at = clock.now() - timedelta(hours=1)
    surgery = make_record("surgery", hospital.code, "op-1", at)  # 36.06, not in the loaded table
    answer = (await post_records(client, hospital, "surgery", [surgery])).json()["records"][0]
    assert (answer["status"], answer["errors"][0]["rule"]) == ("rejected", "code.not_in_table")
    async with database.transaction() as session:
        await service.load_codes(session, clock, "ICD-9-CM-3",
                                 write(tmp_path, "36.06,冠状动脉支架置入\n", name="b.csv"))
    answer = (await post_records(client, hospital, "surgery", [surgery])).json()["records"][0]
    assert answer["status"] == "accepted"


# --- the published standard --------------------------------------------------------------------------------


async def test_the_standard_lists_every_code_table_with_its_codes_and_names(
    client: httpx.AsyncClient, hospital: Unit
) -> None:
    document = (await client.get("/api/collection/standard", headers=hospital.headers)).json()
    tables = {table["id"]: {c["code"]: c["name"] for c in table["codes"]} for table in document["code_tables"]}
    assert tables["CV04.50.020"] == {"1": "阴性", "2": "阳性", "3": "不详", "4": "未查"}
    assert tables["CV07.10.005"]["07"] == "全自费"
    assert tables["CV06.00.226"]["3"] == "医嘱转社区卫生服务机构/乡镇卫生院"
    assert tables == {table_id: table.codes for table_id, table in load_standard().tables.items()}


async def test_the_standard_lists_every_rule_with_both_messages(client: httpx.AsyncClient, hospital: Unit) -> None:
    document = (await client.get("/api/collection/standard", headers=hospital.headers)).json()
    assert document["rules"]["record.revoked"] == {
        "message": "the record was revoked and can no longer be changed", "message_zh": "该记录已撤销，不能再修改"}
    assert set(document["rules"]) == set(RULES)


async def test_the_standard_needs_a_caller(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/collection/standard")).status_code == 401
    assert (await client.get("/api/collection/standard.html")).status_code == 401


async def test_the_standard_page_shows_every_form_and_table(client: httpx.AsyncClient, hospital: Unit) -> None:
    page = (await client.get("/api/collection/standard.html", headers=hospital.headers)).text
    standard = load_standard()
    for form in standard.forms.values():
        assert form.name_zh in page, form.code
    for table in standard.tables.values():
        assert table.id in page, table.id
