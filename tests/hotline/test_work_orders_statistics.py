"""A month's work-order figures for the bulletin, from the orders' events, and the command that prints them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import httpx
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline.work_order_statistics import WorkOrderFigures, work_order_figures
from tests.hotline.work_orders_support import (
    CITY_PUSH,
    ORDERS,
    PROVINCE_PUSH,
    Steps,
    agent,
    city,
    city_push,
    handler,
    organizations,
    province,
    province_push,
)

JUNE = (date(2022, 6, 1), date(2022, 6, 30))


async def _work(app: FastAPI, client: httpx.AsyncClient, order: Steps, organization_id: int,
                satisfaction: str | None) -> None:
    hotline = await agent(app)
    await order.post("dispatch", hotline)
    await order.post("reply", await handler(app, organization_id), reply="答复")
    await order.post("close", hotline)
    if satisfaction:
        await order.post("callback", hotline, satisfaction=satisfaction)


async def _figures(app: FastAPI, first: date, last: date) -> WorkOrderFigures:
    async with app.state.database.transaction() as session:
        return await work_order_figures(session, first, last)


async def test_the_months_figures_count_sources_timeliness_and_satisfaction(app: FastAPI,
                                                                            client: httpx.AsyncClient) -> None:
    ids = await organizations(app, "NJH-A")
    organization = ids["NJH-A"]
    orders = []
    for n in range(3):
        pushed = await client.post(CITY_PUSH, headers=await city(app), json=city_push(f"NJ-{n}"))
        orders.append(Steps(client, pushed.json()["work_order_id"]))
    pushed = await client.post(PROVINCE_PUSH, headers=await province(app),
                               json=province_push("JS-1", orderType="URGENT"))
    urgent = Steps(client, pushed.json()["work_order_id"])
    own = await client.post(ORDERS, headers=await agent(app), json={
        "request_key": "own", "category": "complaint", "title": "t", "content": "c", "organization_id": organization})
    assert own.status_code == 200
    await _work(app, client, orders[0], organization, "satisfied")
    await _work(app, client, orders[1], organization, "basically_satisfied")
    await _work(app, client, orders[2], organization, "dissatisfied")  # reopened: its close stays counted
    app.state.clock.set(datetime(2022, 6, 16, 10, tzinfo=BUSINESS_TZ))  # the urgent order was due yesterday
    await _work(app, client, urgent, organization, None)
    figures = await _figures(app, *JUNE)
    assert figures == WorkOrderFigures(
        by_source={"city_12345": 3, "province_12345": 1, "self_received": 1}, closed=4, closed_on_time=3,
        on_time_rate=Decimal("75.00"), callbacks=3, satisfied=1, basically_satisfied=1, dissatisfied=1,
        satisfaction_rate=Decimal("66.67"))
    july = await _figures(app, date(2022, 7, 1), date(2022, 7, 31))
    assert july == WorkOrderFigures(by_source={"city_12345": 0, "province_12345": 0, "self_received": 0}, closed=0,
                                    closed_on_time=0, on_time_rate=None, callbacks=0, satisfied=0,
                                    basically_satisfied=0, dissatisfied=0, satisfaction_rate=None)
