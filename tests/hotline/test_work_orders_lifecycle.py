"""A work order's life over HTTP: dispatch, reply, close, callback and reopening, extensions, reminders,
illegal steps, retried steps, and the organizations' view of their own orders only."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline import work_orders
from cityhealth.security.models import AuditEvent
from tests.hotline.work_orders_support import (
    CITY_PUSH,
    ORDERS,
    Steps,
    agent,
    city,
    city_push,
    handler,
    organizations,
    supervisor,
)


async def _order(app: FastAPI, client: httpx.AsyncClient, order_id: str = "NJ-1", **push: str) -> Steps:
    response = await client.post(CITY_PUSH, headers=await city(app), json=city_push(order_id, **push))
    assert response.status_code == 200, response.text
    return Steps(client, response.json()["work_order_id"])


async def _get(client: httpx.AsyncClient, order: Steps, headers: dict[str, str]) -> dict[str, object]:
    response = await client.get(f"{ORDERS}/{order.order_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_an_order_goes_from_intake_to_a_satisfied_callback(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline, staff_a = await agent(app), await handler(app, ids["NJH-A"])
    assert (await order.post("dispatch", hotline)).json()["state"] == "dispatched"
    replied = await order.post("reply", staff_a, reply="已协调增开挂号窗口。")
    assert replied.json()["state"] == "replied"
    closed = (await order.post("close", hotline)).json()
    assert (closed["state"], closed["sla"]) == ("closed", "on_time")
    called = (await order.post("callback", hotline, satisfaction="satisfied")).json()
    assert called["callback"] == "satisfied"
    # The outbox's sending task records `result_returned` whenever it runs, which may be before or after the
    # call-back: the order's own steps are what this test follows.
    kinds = [event["kind"] for event in called["events"] if event["kind"] != "result_returned"]
    assert kinds == ["received", "dispatched", "replied", "closed", "callback"]


async def test_an_illegal_step_is_refused_naming_the_state_and_the_step(app: FastAPI,
                                                                         client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline = await agent(app)
    refused = await order.post("close", hotline)
    assert refused.status_code == 409
    problem = refused.json()
    assert (problem["code"], problem["field"], problem["value"]) == ("illegal_transition", "state", "received")
    assert "close" in problem["detail"]
    assert "received" in problem["detail"]
    early_reply = await order.post("reply", await handler(app, ids["NJH-A"]), reply="答复")
    assert (early_reply.status_code, early_reply.json()["value"]) == (409, "received")
    await order.post("dispatch", hotline)
    twice = await order.post("dispatch", hotline)
    assert (twice.status_code, twice.json()["value"]) == (409, "dispatched")
    callback = await order.post("callback", hotline, satisfaction="satisfied")
    assert (callback.status_code, callback.json()["value"]) == (409, "dispatched")
    detail = await _get(client, order, hotline)
    assert [event["kind"] for event in detail["events"]] == ["received", "dispatched"]  # type: ignore[union-attr]


async def test_a_retried_step_is_one_step(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline = await agent(app)
    first = await order.post("dispatch", hotline, key="dispatch-once")
    again = await order.post("dispatch", hotline, key="dispatch-once")
    assert again.status_code == 200
    assert len(again.json()["events"]) == len(first.json()["events"]) == 2
    other = await order.post("close", hotline, key="dispatch-once")
    assert (other.status_code, other.json()["field"]) == (409, "request_key")


async def test_dissatisfaction_reopens_the_order_with_a_new_deadline(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline, staff_a = await agent(app), await handler(app, ids["NJH-A"])
    await order.post("dispatch", hotline)
    await order.post("reply", staff_a, reply="已答复。")
    await order.post("close", hotline)
    app.state.clock.advance(timedelta(days=2))
    hotline, staff_a = await agent(app), await handler(app, ids["NJH-A"])  # tokens live minutes
    reopened = (await order.post("callback", hotline, satisfaction="dissatisfied")).json()
    assert reopened["state"] == "reopened"
    assert reopened["callback"] is None  # the callback was the closed result's; the reopened order has none yet
    # Complaint: 10 working days from Fri 17 June.
    assert datetime.fromisoformat(reopened["due_at"]) == datetime(2022, 7, 2, tzinfo=BUSINESS_TZ)
    assert (await order.post("dispatch", hotline)).json()["state"] == "dispatched"
    await order.post("reply", staff_a, reply="再次处理。")
    await order.post("close", hotline)
    final = (await order.post("callback", hotline, satisfaction="basically_satisfied")).json()
    assert (final["state"], final["callback"]) == ("closed", "basically_satisfied")


async def test_an_approved_extension_moves_the_deadline_by_working_days(app: FastAPI,
                                                                         client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline, staff_a, boss = await agent(app), await handler(app, ids["NJH-A"]), await supervisor(app)
    await order.post("dispatch", hotline)
    asked = (await order.post("extension-request", staff_a, working_days=3, reason="需要联合多部门核查。")).json()
    assert asked["pending_extension_days"] == 3
    twice = await order.post("extension-request", staff_a, working_days=2, reason="再延。")
    assert (twice.status_code, twice.json()["rule"]) == (409, "hotline.work_order.one_extension_at_a_time")
    assert (await order.post("extension-request/approve", hotline)).status_code == 403  # agents do not decide
    approved = (await order.post("extension-request/approve", boss, note="同意")).json()
    # Due the end of Wed 29 June; three working days more: 30 June, 1 July, 4 July.
    assert datetime.fromisoformat(approved["due_at"]) == datetime(2022, 7, 5, tzinfo=BUSINESS_TZ)
    assert approved["pending_extension_days"] is None


async def test_a_refused_extension_keeps_the_deadline(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    await order.post("dispatch", await agent(app))
    await order.post("extension-request", await handler(app, ids["NJH-A"]), working_days=3, reason="理由")
    refused = (await order.post("extension-request/refuse", await supervisor(app), note="不符合延期条件")).json()
    assert datetime.fromisoformat(refused["due_at"]) == datetime(2022, 6, 30, tzinfo=BUSINESS_TZ)
    assert refused["pending_extension_days"] is None
    none_pending = await order.post("extension-request/approve", await supervisor(app))
    assert (none_pending.status_code, none_pending.json()["rule"]) == (409, "hotline.work_order.extension_pending")


async def test_an_extension_after_the_deadline_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client, gdlx="jj")  # urgent: due the same day
    await order.post("dispatch", await agent(app))
    app.state.clock.set(datetime(2022, 6, 16, 8, tzinfo=BUSINESS_TZ))
    late = await order.post("extension-request", await handler(app, ids["NJH-A"]), working_days=1, reason="来不及")
    assert late.status_code == 409
    assert (late.json()["rule"], late.json()["value"]) == ("hotline.work_order.extension_in_advance", "dispatched")
    detail = await _get(client, order, await agent(app))
    assert detail["sla"] == "overdue"


async def test_the_sla_status_follows_the_clock_and_the_close(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    order = await _order(app, client)
    hotline = await agent(app)
    await order.post("dispatch", hotline)
    assert (await _get(client, order, hotline))["sla"] == "on_time"
    app.state.clock.set(datetime(2022, 6, 29, 9, tzinfo=BUSINESS_TZ))
    hotline = await agent(app)  # tokens live minutes
    assert (await _get(client, order, hotline))["sla"] == "due_soon"
    app.state.clock.set(datetime(2022, 6, 30, 9, tzinfo=BUSINESS_TZ))
    hotline = await agent(app)
    assert (await _get(client, order, hotline))["sla"] == "overdue"
    await order.post("reply", await handler(app, ids["NJH-A"]), reply="迟到的答复")
    await order.post("close", hotline)
    assert (await _get(client, order, hotline))["sla"] == "closed_late"


async def test_a_dispatched_order_due_soon_is_reminded_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    order = await _order(app, client)
    await order.post("dispatch", await agent(app))
    database, clock = app.state.database, app.state.clock
    async with database.transaction() as session:
        assert await work_orders.remind_due(session, clock) == []  # due in two weeks
    clock.set(datetime(2022, 6, 29, 10, tzinfo=BUSINESS_TZ))
    async with database.transaction() as session:
        assert await work_orders.remind_due(session, clock) == [order.order_id]
    async with database.transaction() as session:
        assert await work_orders.remind_due(session, clock) == []
    detail = await _get(client, order, await agent(app))
    assert [event["kind"] for event in detail["events"]][-1] == "reminded"  # type: ignore[index]


async def test_an_organization_sees_only_its_own_orders(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A", "NJH-B")
    mine = await _order(app, client, "NJ-A", cbdw="NJH-A")
    theirs = await _order(app, client, "NJ-B", cbdw="NJH-B")
    hotline, staff_a = await agent(app), await handler(app, ids["NJH-A"])
    await mine.post("dispatch", hotline)
    await theirs.post("dispatch", hotline)
    listed = (await client.get(ORDERS, headers=staff_a)).json()
    assert [row["id"] for row in listed] == [mine.order_id]
    asked_for_other = (await client.get(ORDERS, headers=staff_a, params={"organization_id": ids["NJH-B"]})).json()
    assert asked_for_other == []
    assert len((await client.get(ORDERS, headers=hotline)).json()) == 2
    other = await client.get(f"{ORDERS}/{theirs.order_id}", headers=staff_a)
    assert other.status_code == 404
    reply = await theirs.post("reply", staff_a, reply="不是我们的")
    assert reply.status_code == 404
    async with app.state.database.transaction() as session:
        denied = (await session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "hotline_work_order",
                                                                  AuditEvent.outcome == "denied"))).all()
    assert len(denied) == 2


async def test_orders_are_listed_by_filters(app: FastAPI, client: httpx.AsyncClient) -> None:
    await organizations(app, "NJH-A")
    first = await _order(app, client, "NJ-1")
    await _order(app, client, "NJ-2", gdlx="zx", bt="门诊时间咨询")
    hotline = await agent(app)
    await first.post("dispatch", hotline)

    async def ids(**params: str) -> list[int]:
        response = await client.get(ORDERS, headers=hotline, params=params)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()]

    assert await ids(state="dispatched") == [first.order_id]
    assert await ids(state="received") == [first.order_id + 1]
    assert await ids(category="consultation") == [first.order_id + 1]
    assert await ids(q="门诊时间") == [first.order_id + 1]
    assert await ids(source="province_12345") == []
    assert len(await ids(source="city_12345")) == 2
    bad = await client.get(ORDERS, headers=hotline, params={"state": "lost"})
    assert bad.status_code == 422
