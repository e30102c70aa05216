"""The operator's pages over HTTP (no browser): the drill-down to rejected records, login with its CSRF token and
cookie, logout, the session's timeout, and which web routes are public."""

from __future__ import annotations

import json
import re
from datetime import timedelta
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
from tests.factories.sign_in import CSRF_INPUT, log_in
from tests.web.conftest import Seeded
from tests.web.pages_support import audit_events, drill_down, rows_of, upload_job

from cityhealth.clock import SimulatedClock
from cityhealth.collection.api import runtime
from cityhealth.config import Environment, Settings, generate_key
from cityhealth.db.engine import Database
from cityhealth.security.models import StaffUser
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
    ("GET", "/app/login"), ("POST", "/app/login"), ("POST", "/app/login/code"), ("POST", "/app/login/choose"),
    ("GET", "/app/register"), ("POST", "/app/register"), ("POST", "/app/register/complete"),
}

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
    assert CSRF_INPUT.search(response.text)
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
    token = CSRF_INPUT.search(form.text)
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
    token = CSRF_INPUT.search(page.text)
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
