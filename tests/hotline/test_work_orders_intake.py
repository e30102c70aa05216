"""Work orders in: each 12345 system's push through its adapter, repeated pushes, the hotline's own orders."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline.work_order_models import WorkOrder, WorkOrderEvent
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.work_orders_support import (
    CITY_PUSH,
    ORDERS,
    PROVINCE_PUSH,
    agent,
    city,
    city_push,
    handler,
    organizations,
    province,
    province_push,
)


async def _count(app: FastAPI, model: type) -> int:
    async with app.state.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_city_push_is_received_with_its_complaint_deadline(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    response = await client.post(CITY_PUSH, headers=await city(app), json=city_push())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] is True
    assert body["state"] == "received"
    # Wed 15 June 2022 + 10 working days: the 30th of June begins when the 29th, the tenth, ends.
    assert datetime.fromisoformat(body["due_at"]) == datetime(2022, 6, 30, tzinfo=BUSINESS_TZ)
    detail = (await client.get(f"{ORDERS}/{body['work_order_id']}", headers=await agent(app))).json()
    assert (detail["source"], detail["source_order_id"], detail["category"]) == ("city_12345", "NJ-2022-0001",
                                                                                  "complaint")
    assert [event["kind"] for event in detail["events"]] == ["received"]


async def test_a_province_push_maps_its_own_shape(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    response = await client.post(PROVINCE_PUSH, headers=await province(app), json=province_push())
    assert response.status_code == 200, response.text
    detail = (await client.get(f"{ORDERS}/{response.json()['work_order_id']}", headers=await agent(app))).json()
    assert (detail["source"], detail["category"], detail["title"]) == ("province_12345", "consultation",
                                                                       "疫苗接种时间咨询")
    # Consultation: 5 working days from Wed 15 June.
    assert datetime.fromisoformat(detail["due_at"]) == datetime(2022, 6, 23, tzinfo=BUSINESS_TZ)


async def test_a_push_received_twice_is_one_order(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    headers = await city(app)
    first = (await client.post(CITY_PUSH, headers=headers, json=city_push())).json()
    again = await client.post(CITY_PUSH, headers=headers, json=city_push())
    assert again.status_code == 200
    assert again.json()["work_order_id"] == first["work_order_id"]
    assert again.json()["created"] is False
    assert (await _count(app, WorkOrder), await _count(app, WorkOrderEvent)) == (1, 1)


async def test_the_same_order_id_from_both_systems_is_two_orders(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    await client.post(CITY_PUSH, headers=await city(app), json=city_push("X-1"))
    await client.post(PROVINCE_PUSH, headers=await province(app), json=province_push("X-1"))
    assert await _count(app, WorkOrder) == 2


async def test_a_second_push_with_other_content_is_refused_naming_the_difference(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A", "NJH-B")
    headers = await city(app)
    await client.post(CITY_PUSH, headers=headers, json=city_push())
    changed = await client.post(CITY_PUSH, headers=headers, json=city_push(nr="另一段内容。", cbdw="NJH-B"))
    assert changed.status_code == 409
    problem = changed.json()
    assert problem["code"] == "work_order_changed"
    assert problem["field"] == "nr"
    assert "nr, cbdw" in problem["detail"]
    assert [error["field"] for error in problem["errors"]] == ["nr", "cbdw"]
    assert await _count(app, WorkOrder) == 1


async def test_an_unknown_organization_is_refused_naming_the_sources_field(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    city_answer = await client.post(CITY_PUSH, headers=await city(app), json=city_push(cbdw="NOSUCH"))
    assert city_answer.status_code == 422
    assert (city_answer.json()["field"], city_answer.json()["value"]) == ("cbdw", "NOSUCH")
    province_answer = await client.post(PROVINCE_PUSH, headers=await province(app),
                                        json=province_push(handleOrgCode="NOSUCH"))
    assert (province_answer.status_code, province_answer.json()["field"]) == (422, "handleOrgCode")
    own = await client.post(ORDERS, headers=await agent(app), json={
        "request_key": "k1", "category": "complaint", "title": "t", "content": "c", "organization_id": 99999})
    assert (own.status_code, own.json()["field"], own.json()["rule"]) == (
        422, "organization_id", "hotline.work_order.organization_known")
    assert await _count(app, WorkOrder) == 0


async def test_each_system_pushes_only_with_its_own_scope(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    assert (await client.post(PROVINCE_PUSH, headers=await city(app), json=province_push())).status_code == 403
    assert (await client.post(CITY_PUSH, headers=await province(app), json=city_push())).status_code == 403
    assert (await client.post(CITY_PUSH, headers=await agent(app), json=city_push())).status_code == 403


async def test_a_push_in_the_other_systems_shape_is_malformed(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    response = await client.post(CITY_PUSH, headers=await city(app), json=province_push())
    assert response.status_code == 422
    assert await _count(app, WorkOrder) == 0


async def test_an_agent_creates_a_complaint_linked_to_a_call(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    await add_line(app)
    await client.post("/api/hotline/call-events", headers=await telephony(app),
                      json={"events": call_events("cti-wo-1", app.state.clock.now(), agent="staff:11")})
    headers = await agent(app)
    call_id = (await client.get("/api/hotline/calls", headers=headers)).json()[0]["id"]
    body = {"request_key": "own-1", "category": "complaint", "title": "医生态度",
            "content": "来电投诉接诊医生态度生硬。", "organization_id": ids["NJH-A"], "call_id": call_id}
    created = await client.post(ORDERS, headers=headers, json=body)
    assert created.status_code == 200, created.text
    retried = await client.post(ORDERS, headers=headers, json=body)
    assert retried.json() == created.json() | {"created": False}
    detail = (await client.get(f"{ORDERS}/{created.json()['work_order_id']}", headers=headers)).json()
    assert (detail["source"], detail["call_id"], detail["source_order_id"]) == ("self_received", call_id, None)


async def test_a_complaint_on_an_unknown_call_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    response = await client.post(ORDERS, headers=await agent(app), json={
        "request_key": "own-2", "category": "complaint", "title": "t", "content": "c",
        "organization_id": ids["NJH-A"], "call_id": 4242})
    assert (response.status_code, response.json()["field"]) == (422, "call_id")


async def test_an_organizations_staff_may_not_create_orders(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    response = await client.post(ORDERS, headers=await handler(app, ids["NJH-A"]), json={
        "request_key": "own-3", "category": "complaint", "title": "t", "content": "c",
        "organization_id": ids["NJH-A"]})
    assert response.status_code == 403


async def test_pushes_of_one_order_at_the_same_moment_make_one_order(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    headers = await city(app)
    answers = await asyncio.gather(*(client.post(CITY_PUSH, headers=headers, json=city_push("NJ-RACE"))
                                     for _ in range(6)))
    assert [answer.status_code for answer in answers] == [200] * 6
    assert len({answer.json()["work_order_id"] for answer in answers}) == 1
    assert sum(answer.json()["created"] for answer in answers) == 1
    assert (await _count(app, WorkOrder), await _count(app, WorkOrderEvent)) == (1, 1)
