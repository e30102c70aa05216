"""The work-order pages over HTTP (no browser): the hotline's list, the new-order form linked to a call, the
steps as forms, an organization's own orders, CSRF, and the pages' guards."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from cityhealth.web.session import SESSION_COOKIE
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.work_orders_support import CITY_PUSH, agent, city, city_push, handler, organizations, supervisor

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="request_key" value="([^"]+)"')


def signed_in(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The browser's session cookie: the same access token as the bearer headers (the last login's cookies go)."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))


def form_values(html: str, action: str) -> dict[str, str]:
    """The CSRF token and request key of the form posting to `action`."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.DOTALL)
    assert form is not None, f"no form to {action}"
    csrf, key = _CSRF.search(form.group(1)), _KEY.search(form.group(1))
    assert csrf is not None
    assert key is not None
    return {"csrf_token": csrf.group(1), "request_key": key.group(1)}


async def _pushed(app: FastAPI, client: httpx.AsyncClient, order_id: str = "NJ-1", code: str = "NJH-A") -> int:
    response = await client.post(CITY_PUSH, headers=await city(app), json=city_push(order_id, cbdw=code))
    order: int = response.json()["work_order_id"]
    return order


async def test_an_agent_creates_an_order_from_a_call_and_dispatches_it(app: FastAPI,
                                                                       client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    await add_line(app)
    await client.post("/api/hotline/call-events", headers=await telephony(app),
                      json={"events": call_events("cti-page-1", app.state.clock.now(), agent="staff:11")})
    headers = await agent(app)
    call_id = (await client.get("/api/hotline/calls", headers=headers)).json()[0]["id"]
    signed_in(client, headers)
    form = await client.get("/hotline/work-orders/new", params={"call_id": call_id})
    assert form.status_code == 200
    assert f'name="call_id" value="{call_id}"' in form.text
    assert f"来电 {call_id}" in form.text
    created = await client.post("/hotline/work-orders/new", data={
        **form_values(form.text, "/hotline/work-orders/new"), "category": "complaint", "title": "候诊时间长",
        "content": "来电反映候诊时间过长。", "organization_id": str(ids["NJH-A"]), "call_id": str(call_id)})
    assert created.status_code == 303, created.text
    order_url = created.headers["location"]
    order_id = int(order_url.rsplit("/", 1)[1])
    assert (await client.get(f"/api/hotline/work-orders/{order_id}", headers=headers)).json()["call_id"] == call_id
    detail = await client.get(order_url)
    assert "派单至承办单位" in detail.text
    dispatched = await client.post(f"{order_url}/dispatch", data=form_values(detail.text, f"{order_url}/dispatch"))
    assert dispatched.status_code == 303
    assert "已派单" in (await client.get(order_url)).text
    listed = await client.get("/hotline/work-orders")
    assert "候诊时间长" in listed.text


async def test_a_refused_form_shows_why_and_keeps_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    order_id = await _pushed(app, client)
    signed_in(client, await agent(app))
    url = f"/hotline/work-orders/{order_id}"
    page = await client.get(url)
    closed = await client.post(f"{url}/close", data=form_values(page.text, f"{url}/dispatch"))
    assert closed.status_code == 409
    assert "close refused" in closed.text
    assert "received" in closed.text
    stale = await client.post(f"{url}/dispatch", data={"csrf_token": "forged", "request_key": "k"})
    assert stale.status_code == 403
    assert "已受理" in (await client.get(url)).text


async def test_an_organization_replies_and_asks_for_an_extension_on_its_own_orders(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A", "NJH-B")
    mine, theirs = await _pushed(app, client, "NJ-A", "NJH-A"), await _pushed(app, client, "NJ-B", "NJH-B")
    hotline = await agent(app)
    for order in (mine, theirs):
        await client.post(f"/api/hotline/work-orders/{order}/dispatch", headers=hotline,
                          json={"request_key": f"d-{order}"})
    signed_in(client, await handler(app, ids["NJH-A"]))
    listed = await client.get("/hotline/organization-orders")
    assert f'href="/hotline/organization-orders/{mine}"' in listed.text
    assert f'href="/hotline/organization-orders/{theirs}"' not in listed.text
    assert '<a href="/hotline/organization-orders">本单位工单</a>' in listed.text  # the site bar's link
    assert (await client.get(f"/hotline/organization-orders/{theirs}")).status_code == 404
    url = f"/hotline/organization-orders/{mine}"
    page = await client.get(url)
    asked = await client.post(f"{url}/extension", data={
        **form_values(page.text, f"{url}/extension"), "working_days": "2", "reason": "需现场核查"})
    assert asked.status_code == 303
    page = await client.get(url)
    assert "2 个工作日，待审批" in page.text
    replied = await client.post(f"{url}/reply", data={**form_values(page.text, f"{url}/reply"),
                                                       "reply": "已核查并整改。"})
    assert replied.status_code == 303
    assert "已答复" in (await client.get(url)).text
    assert (await client.get("/hotline/work-orders")).status_code == 403  # the hotline's pages are not theirs


async def test_a_supervisor_decides_an_extension_on_the_page(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _pushed(app, client)
    await client.post(f"/api/hotline/work-orders/{order}/dispatch", headers=await agent(app),
                      json={"request_key": "d"})
    await client.post(f"/api/hotline/work-orders/{order}/extension-request",
                      headers=await handler(app, ids["NJH-A"]),
                      json={"request_key": "e", "working_days": 3, "reason": "理由"})
    url = f"/hotline/work-orders/{order}"
    signed_in(client, await agent(app))
    assert "同意延期" not in (await client.get(url)).text  # an agent does not decide
    signed_in(client, await supervisor(app))
    page = await client.get(url)
    approved = await client.post(f"{url}/approve", data=form_values(page.text, f"{url}/approve"))
    assert approved.status_code == 303
    assert "同意延期" in (await client.get(url)).text  # in the history now


async def test_the_pages_need_a_login(client: httpx.AsyncClient) -> None:
    for path in ("/hotline/work-orders", "/hotline/work-orders/new", "/hotline/organization-orders"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
