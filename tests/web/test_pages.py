"""Every page over HTTP (no browser): status, content, the public/operator split, CSRF, and the login cookie."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from tests.factories.collection import make_record
from tests.factories.security import headers_for, machine, staff
from tests.web.conftest import ENROLLED, MONTH, NOT_ENROLLED, Seeded

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent, StaffUser
from cityhealth.security.principals import Role, Scope
from cityhealth.web import dashboard
from cityhealth.web.demo import DemoOperator
from cityhealth.web.session import CSRF_COOKIE, SESSION_COOKIE, set_cookie

# The pages anyone may open (the bulletin and the dashboard's aggregates are public, as the printed bulletin
# is). The security room's route audit allow-lists exactly these; every other web route needs a login.
PUBLIC_PAGES = {
    ("GET", "/"), ("GET", "/bulletin/"), ("GET", "/bulletin/{edition}"), ("GET", "/dashboard/quality"),
    ("GET", "/dashboard/quality/units/{organization_id}"), ("GET", "/login"), ("POST", "/login"),
    ("GET", "/booking/"), ("GET", "/booking/slots/{slot_id}"), ("GET", "/booking/login"), ("POST", "/booking/login"),
}
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def rows_of(html: str, table_class: str) -> list[list[str]]:
    """The body rows of the first table with `table_class`, as cell texts (tags stripped)."""
    table = re.search(rf'<table class="[^"]*\b{table_class}\b[^"]*">(.*?)</table>', html, re.DOTALL)
    assert table is not None, f"no table .{table_class}"
    body = table.group(1).split("<tbody>", 1)[1]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)]


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section[^>]*id="{re.escape(section_id)}"[^>]*>(.*?)</section>', html, re.DOTALL)
    assert found is not None, f"no section #{section_id}"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, operator: DemoOperator, clock: SimulatedClock, *,
                 next_url: str = "", code: str | None = None) -> httpx.Response:
    form = await client.get("/login")
    csrf = _CSRF_INPUT.search(form.text)
    assert csrf is not None
    return await client.post("/login", data={
        "username": operator.username, "password": operator.password,
        "totp": pyotp.TOTP(operator.totp_secret).at(clock.now()) if code is None else code,
        "csrf_token": csrf.group(1), "next": next_url})


async def upload_job(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock, seeded: Seeded,
                     broken: list[str]) -> int:
    """A bulk job from the enrolled hospital: one good row, then a row without visit_no per id in `broken`."""
    at = clock.now() - timedelta(hours=1)
    rows = [make_record("outpatient_visit", seeded.enrolled.code, "gl-bulk-ok", at),
            *(make_record("outpatient_visit", seeded.enrolled.code, record_id, at, visit_no=None)
              for record_id in broken)]
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=seeded.enrolled.id,
                                             client_id=f"client-{seeded.enrolled.id}"))
    response = await client.post("/api/collection/jobs", params={"form": "outpatient_visit"},
                                 content=b"".join(json.dumps(row).encode() + b"\n" for row in rows),
                                 headers={**headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    job_id: int = response.json()["id"]
    await runtime(app)[1].wait(job_id)
    return job_id


def drill_down(seeded: Seeded, **query: str) -> str:
    params = "&".join(f"{name}={value}" for name, value in {"month": MONTH, **query}.items())
    return f"/dashboard/quality/units/{seeded.enrolled.id}/rejections?{params}"


async def audit_events(database: Database, **where: str) -> list[AuditEvent]:
    async with database.transaction() as session:
        statement = select(AuditEvent)
        for column, value in where.items():
            statement = statement.where(getattr(AuditEvent, column) == value)
        return list((await session.execute(statement)).scalars())


# --- landing and bulletin --------------------------------------------------------------------------------


async def test_landing_links_the_latest_bulletin_the_dashboard_and_the_api_docs(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert f'href="/bulletin/{MONTH}"' in response.text
    assert 'href="/dashboard/quality"' in response.text
    assert 'href="/docs"' in response.text


async def test_landing_without_data_links_last_months_bulletin(client: httpx.AsyncClient) -> None:
    response = await client.get("/")  # the clock is in June 2022; nothing was uploaded
    assert 'href="/bulletin/2022-05"' in response.text
    assert "近期暂无数据" in response.text


async def test_bulletin_index_lists_the_months_with_data(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/bulletin/")
    assert response.status_code == 200
    assert [row[0] for row in rows_of(response.text, "months")] == [MONTH]
    assert f'href="/bulletin/{MONTH}.docx"' in response.text


async def test_bulletin_index_month_form_opens_that_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-11"})
    assert (response.status_code, response.headers["location"]) == (303, "/bulletin/2021-11")


async def test_bulletin_index_month_form_refuses_a_malformed_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-1"})
    assert response.status_code == 422
    assert response.json()["field"] == "month"


async def test_bulletin_page_is_public_and_shows_its_tables(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<td class="total-label">合计</td>' in response.text
    hospitals = section(response.text, "collection.hospitals")
    row = re.search(rf"<tr><td>{ENROLLED}</td>(.*?)</tr>", hospitals)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == "5"  # 数据上传量: five records sent, one of them rejected
    assert cells[4] == "75.00%"  # 门急诊实时数据符合率
    assert 'class="site-bar"' in response.text
    assert f'href="/bulletin/{MONTH}.json"' in response.text


async def test_bulletin_of_a_month_without_uploads_prints_zeros_and_slashes(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/bulletin/2022-05")
    assert response.status_code == 200
    hospitals = section(response.text, "collection.hospitals")
    row = re.search(rf"<tr><td>{ENROLLED}</td>(.*?)</tr>", hospitals)
    assert row is not None  # enrolled since January: listed, with nothing uploaded
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == "0"
    assert cells[4] == "/"  # enrolled but no records: not measured, never "0.00%"


async def test_malformed_month_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/2022-13")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["field"], problem["value"], problem["rule"]) == ("month", "2022-13", "month.format")


async def test_unknown_download_format_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/bulletin/{MONTH}.pdf")
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"]) == ("format", "pdf")


async def test_json_download_is_the_scenario_format(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/bulletin/{MONTH}.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.json"'
    document = json.loads(response.content)
    assert document["month"] == MONTH
    hospitals = {row["hospital"]: row for row in document["collection"]["hospitals"]}
    assert hospitals[ENROLLED]["uploaded_records"] == 5
    assert hospitals[NOT_ENROLLED]["outpatient_conformance_pct"] is None


async def test_markdown_and_docx_downloads(client: httpx.AsyncClient, seeded: Seeded) -> None:
    markdown = await client.get(f"/bulletin/{MONTH}.md")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert ENROLLED in markdown.text
    docx = await client.get(f"/bulletin/{MONTH}.docx")
    assert docx.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.docx"'
    with zipfile.ZipFile(io.BytesIO(docx.content)) as archive:
        assert ENROLLED in archive.read("word/document.xml").decode("utf-8")


async def test_static_assets_are_served_by_the_platform(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/site.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    page = await client.get("/login")
    assert not re.search(r'(?:href|src)="(?:https?:)?//', page.text)  # nothing from another host


# --- dashboard -------------------------------------------------------------------------------------------


async def test_dashboard_ranks_units_by_conformance_with_unmeasured_last(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/dashboard/quality", params={"month": MONTH})
    assert response.status_code == 200
    hospitals = section(response.text, "hospitals")
    rows = rows_of(hospitals, "ranking-table")
    assert [(row[0], row[1], row[6]) for row in rows] == [("1", ENROLLED, "75.00%"), ("—", NOT_ENROLLED, "/")]
    assert "<svg" in hospitals
    assert f'href="/dashboard/quality/units/{seeded.enrolled.id}?month={MONTH}"' in hospitals


async def test_dashboard_without_a_month_shows_the_latest_month_with_data(
        client: httpx.AsyncClient, seeded: Seeded, clock: SimulatedClock) -> None:
    clock.advance(date(2022, 8, 3) - date(2022, 6, 15))  # two months on, nothing new uploaded
    response = await client.get("/dashboard/quality")
    assert f"数据质量看板 · {MONTH}" in response.text


async def test_dashboard_refuses_a_malformed_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/quality", params={"month": "June"})
    assert response.status_code == 422
    assert response.json()["field"] == "month"


async def test_unit_page_shows_the_units_month(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    assert response.status_code == 200
    summary = section(response.text, "summary")
    assert "<dd>5</dd>" in summary
    assert "<dd>75.00%</dd>" in summary


async def test_unit_page_of_an_unknown_unit_is_404(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/dashboard/quality/units/999999", params={"month": MONTH})
    assert response.status_code == 404


async def test_unit_page_shows_the_days_table_and_chart_and_the_rule_counts(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    days_section = section(response.text, "days")
    days = rows_of(days_section, "days")
    assert len(days) == 15  # 1-15 June: the clock's today is the 15th
    assert days[0] == ["2022-06-01", "0", "0", "0", "0", "0", "0"]
    assert days[14] == ["2022-06-15", "5", "4", "0", "0", "0", "1"]  # the seeded upload: one record rejected
    assert "<svg" in days_section
    rejections = section(response.text, "rejections")
    assert rows_of(rejections, "rejections") == [["outpatient_visit", "required", "visit_no", "1", "查看（需登录）"]]
    assert "<svg" in rejections
    assert f"/rejections?month={MONTH}&amp;rule=required" in rejections
    assert "尚未由数据采集服务提供" not in response.text


async def test_unit_page_of_a_unit_without_uploads_shows_empty_days_and_no_rejections(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.district_platform.id}", params={"month": MONTH})
    assert response.status_code == 200
    days = rows_of(section(response.text, "days"), "days")
    assert len(days) == 15
    assert all(cells[1:] == ["0"] * 6 for cells in days)
    rejections = section(response.text, "rejections")
    assert "本月没有被退回的记录" in rejections
    assert "<svg" not in rejections


async def test_unit_page_for_anyone_shows_the_aggregates_but_not_the_records(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded, clock: SimulatedClock) -> None:
    job_id = await upload_job(app, client, clock, seeded, ["gl-bulk-bad"])
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    assert response.status_code == 200
    assert rows_of(section(response.text, "rejections"), "rejections")[0][:4] == [
        "outpatient_visit", "required", "visit_no", "2"]  # the real-time rejection and the bulk one
    assert "gl-bulk-bad" not in response.text
    assert "gl-broken" not in response.text
    assert f"{job_id}:" not in response.text
    assert (await client.get(drill_down(seeded))).status_code == 303  # the records need a login


# --- the operator's drill-down, login, logout ------------------------------------------------------------


async def test_drill_down_without_login_redirects_to_login(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(drill_down(seeded, rule="required"))
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [drill_down(seeded, rule="required")]


async def test_drill_down_with_a_forged_cookie_redirects_clears_it_and_is_audited(
        client: httpx.AsyncClient, seeded: Seeded, database: Database) -> None:
    client.cookies.set(SESSION_COOKIE, "not-a-token")
    response = await client.get(drill_down(seeded))
    assert response.status_code == 303
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert [event.detail for event in await audit_events(database, resource_type="web_session")] == ["invalid_token"]


async def test_forged_cookies_are_audited_once_per_address_and_window_then_refused(
        client: httpx.AsyncClient, seeded: Seeded, database: Database) -> None:
    statuses = []
    for _ in range(70):  # the default limit is 60 failed authentications a minute per address
        client.cookies.set(SESSION_COOKIE, "not-a-token")
        statuses.append((await client.get(drill_down(seeded))).status_code)
    assert statuses == [303] * 60 + [429] * 10
    assert [event.detail for event in await audit_events(database, resource_type="web_session")] == ["invalid_token"]


async def test_login_form_carries_a_csrf_token_bound_to_its_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get("/login", params={"next": "/dashboard/quality"})
    assert response.status_code == 200
    assert _CSRF_INPUT.search(response.text)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


async def test_login_without_the_csrf_token_is_refused_before_any_attempt(
        client: httpx.AsyncClient, demo_operator: DemoOperator, clock: SimulatedClock, database: Database) -> None:
    await client.get("/login")
    response = await client.post("/login", data={
        "username": demo_operator.username, "password": demo_operator.password,
        "totp": pyotp.TOTP(demo_operator.totp_secret).at(clock.now())})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert await audit_events(database, action="login") == []


async def test_login_with_a_token_from_another_browser_is_refused(
        client: httpx.AsyncClient, app: FastAPI, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    form = await client.get("/login")
    token = _CSRF_INPUT.search(form.text)
    assert token is not None
    client.cookies.set(CSRF_COOKIE, "another-browsers-nonce")
    response = await client.post("/login", data={
        "username": demo_operator.username, "password": demo_operator.password,
        "totp": pyotp.TOTP(demo_operator.totp_secret).at(clock.now()), "csrf_token": token.group(1)})
    assert response.status_code == 403


async def test_login_sets_a_strict_httponly_session_cookie_and_returns_to_next(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    response = await log_in(client, demo_operator, clock, next_url=drill_down(seeded))
    assert response.status_code == 303
    assert response.headers["location"] == drill_down(seeded)
    session_cookie = next(value for name, value in response.headers.multi_items()
                          if name == "set-cookie" and value.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie
    assert "Secure" not in session_cookie  # a test server speaks plain HTTP; production sets Secure
    page = await client.get(drill_down(seeded))
    assert page.status_code == 200
    assert "退回记录" in page.text


async def test_login_with_a_wrong_code_is_refused_with_the_generic_message(
        client: httpx.AsyncClient, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    response = await log_in(client, demo_operator, clock, code="000000")
    assert response.status_code == 401
    assert "用户名、密码或动态验证码不正确" in response.text
    assert demo_operator.username in response.text  # the username is kept in the form
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_login_without_a_code_asks_for_it(
        client: httpx.AsyncClient, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    response = await log_in(client, demo_operator, clock, code="")
    assert response.status_code == 401
    assert "6 位动态验证码" in response.text


@pytest.mark.parametrize("cursor", [f"{2**63}:1", f"1:{2**63}", "²:1"])
async def test_drill_down_refuses_a_cursor_no_database_integer_can_hold(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock,
        cursor: str) -> None:
    await log_in(client, demo_operator, clock)
    response = await client.get(drill_down(seeded, after=cursor))
    assert response.status_code == 422


async def test_next_pointing_to_another_host_is_ignored(
        client: httpx.AsyncClient, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    response = await log_in(client, demo_operator, clock, next_url="//evil.example/steal")
    assert response.headers["location"] == "/dashboard/quality"


async def test_drill_down_lists_the_units_rejected_records_and_audits_the_read(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock,
        database: Database) -> None:
    job_id = await upload_job(app, client, clock, seeded, ["gl-bulk-1", "gl-bulk-2"])
    await log_in(client, demo_operator, clock)
    response = await client.get(drill_down(seeded, rule="required"))
    assert response.status_code == 200
    error = "required visit_no：门(急)诊号（visit_no）为必填项"
    assert rows_of(response.text, "records") == [[str(job_id), "2", "outpatient_visit", "gl-bulk-1", error],
                                                 [str(job_id), "3", "outpatient_visit", "gl-bulk-2", error]]
    assert "gl-broken" not in response.text  # a real-time rejection is counted, not kept per record
    assert "下一页" not in response.text
    events = await audit_events(database, resource_type="collection_job_rejections")
    assert [(event.action, event.resource_id, event.detail) for event in events] == [
        ("list", str(seeded.enrolled.id), "month=2022-06 rule=required after=- rows=2")]
    assert events[0].actor.startswith("staff:")
    other_rule = await client.get(drill_down(seeded, rule="code.not_in_table"))
    assert "本月没有违反该规则的退回记录" in other_rule.text
    assert "gl-bulk-" not in other_rule.text


async def test_drill_down_links_the_next_page_only_when_there_is_one(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "RECORDS_PAGE", 2)
    job_id = await upload_job(app, client, clock, seeded, ["gl-bulk-1", "gl-bulk-2", "gl-bulk-3"])
    await log_in(client, demo_operator, clock)
    first = await client.get(drill_down(seeded))
    assert [cells[1] for cells in rows_of(first.text, "records")] == ["2", "3"]
    link = re.search(r'<a href="([^"]+)">下一页</a>', first.text)
    assert link is not None
    assert link.group(1).replace("&amp;", "&").endswith(f"after={job_id}%3A3")
    second = await client.get(link.group(1).replace("&amp;", "&"))
    assert [cells[1] for cells in rows_of(second.text, "records")] == ["4"]
    assert "下一页" not in second.text


async def test_drill_down_masks_id_and_mobile_numbers_in_any_field(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock
) -> None:
    legacy_id, mobile = "320102850412037", "13912345678"
    patient = make_record("patient_master_index", seeded.enrolled.code, "gl-p-1", clock.now() - timedelta(hours=1),
                          marital_name=f"旧证{legacy_id}", ethnicity_name=mobile)
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=seeded.enrolled.id,
                                             client_id=f"client-{seeded.enrolled.id}"))
    response = await client.post("/api/collection/jobs", params={"form": "patient_master_index"},
                                 content=json.dumps(patient).encode() + b"\n",
                                 headers={**headers, "content-type": "application/x-ndjson"})
    assert response.status_code == 202, response.text
    await runtime(app)[1].wait(response.json()["id"])
    await log_in(client, demo_operator, clock)
    page = await client.get(drill_down(seeded, rule="code.name_mismatch"))
    assert page.status_code == 200
    shown = " ".join(cells[-1] for cells in rows_of(page.text, "records"))
    assert "旧证320102******037" in shown
    assert "139****5678" in shown
    assert legacy_id not in page.text
    assert mobile not in page.text


async def test_drill_down_refuses_a_login_without_collection_read(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded) -> None:
    headers = await headers_for(app, staff(Role.READING_CENTRE_DOCTOR, user_id=9))
    client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))
    response = await client.get(drill_down(seeded))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


async def test_logout_ends_the_session_behind_the_cookie(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    await log_in(client, demo_operator, clock)
    page = await client.get(drill_down(seeded))
    old_cookie = client.cookies[SESSION_COOKIE]
    token = _CSRF_INPUT.search(page.text)
    assert token is not None
    response = await client.post("/logout", data={"csrf_token": token.group(1)})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    client.cookies.set(SESSION_COOKIE, old_cookie)  # a copy kept from before: the session is over
    assert (await client.get(drill_down(seeded))).status_code == 303


async def test_logout_without_the_csrf_token_is_refused(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    await log_in(client, demo_operator, clock)
    response = await client.post("/logout", data={})
    assert response.status_code == 403
    assert (await client.get(drill_down(seeded))).status_code == 200


async def test_a_session_idle_past_the_timeout_redirects_to_login(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock,
        settings: Settings) -> None:
    await log_in(client, demo_operator, clock)
    clock.advance(timedelta(seconds=settings.staff_session_idle_timeout_s + 1))
    assert (await client.get(drill_down(seeded))).status_code == 303


async def test_roles_removed_after_login_apply_at_the_next_page(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock,
        database: Database) -> None:
    await log_in(client, demo_operator, clock)
    async with database.transaction() as session:
        found = await session.execute(select(StaffUser).where(StaffUser.username == demo_operator.username))
        user = found.scalar_one()
        user.roles = Role.HOTLINE_AGENT.value
    assert (await client.get(drill_down(seeded))).status_code == 403


def test_session_cookie_is_secure_in_production(tmp_path: Any) -> None:
    production = Settings(env=Environment.PRODUCTION, var_dir=tmp_path, field_encryption_key=generate_key(),
                          lookup_hmac_key=generate_key(), token_signing_key=generate_key(),
                          public_base_url="https://health.example.gov.cn")
    response = Response()
    set_cookie(response, production, SESSION_COOKIE, "token")
    assert "Secure" in response.headers["set-cookie"]


def test_every_web_route_is_public_by_name_or_needs_a_login(app: FastAPI) -> None:
    seen: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):  # routers are included as branches, not copied
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.endpoint.__module__.startswith("cityhealth.web"):
            continue
        guarded = any(hasattr(dependency.call, "required_scopes") for dependency in route.dependant.dependencies)
        for method in context.methods or ():
            seen.add((method, str(context.path)))
            assert guarded != ((method, context.path) in PUBLIC_PAGES), f"{method} {context.path}"
    assert seen >= PUBLIC_PAGES
    assert ("GET", "/dashboard/quality/units/{organization_id}/rejections") in seen
