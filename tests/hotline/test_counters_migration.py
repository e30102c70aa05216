"""The counters' migration fills them from what is held already: down and up again, they are as the writes
kept them (calls, self-service questions, work orders with a late close and a reopening)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import BUSINESS_TZ
from cityhealth.db.schema import alembic_config
from cityhealth.hotline.knowledge_models import SelfServiceDay
from cityhealth.hotline.models import CallTally
from cityhealth.hotline.work_order_models import WorkOrderDay
from tests.hotline import work_orders_support as support
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.knowledge_support import BASE, ivr, published_article

BEFORE_COUNTERS = "20261205_0730"


async def _counters(app: FastAPI) -> list[Any]:
    async with app.state.database.transaction() as session:
        return [sorted(tuple(getattr(row, column.name) for column in table.__table__.columns)
                       for row in await session.scalars(select(table)))
                for table in (CallTally, SelfServiceDay, WorkOrderDay)]


async def test_the_counters_are_filled_from_the_rows_held(app: FastAPI, client: httpx.AsyncClient,
                                                          database_url: str) -> None:
    await add_line(app)
    events = [*call_events("c-1", datetime(2022, 6, 3, 9, 10, tzinfo=BUSINESS_TZ)),
              *call_events("c-2", datetime(2022, 6, 3, 23, 50, tzinfo=BUSINESS_TZ), category=None),
              *call_events("c-3", datetime(2022, 6, 4, 0, 5, tzinfo=BUSINESS_TZ), outcome="abandoned")[:3]]
    assert (await client.post("/api/hotline/call-events", headers=await telephony(app),
                              json={"events": events})).status_code == 200
    await published_article(client, app)
    for n, text in enumerate(("被狗咬了去哪打针", "明天会下雨吗")):
        asked = await client.post(f"{BASE}/self-service", headers=await ivr(app),
                                  json={"utterance_id": f"u-{n}", "text": text})
        assert asked.status_code == 200
    organization = (await support.organizations(app, "NJH-A"))["NJH-A"]
    pushed = await client.post(support.PROVINCE_PUSH, headers=await support.province(app),
                               json=support.province_push("JS-1", orderType="URGENT"))
    order = support.Steps(client, pushed.json()["work_order_id"])
    for step, body, who in (("dispatch", {}, "agent"), ("reply", {"reply": "答复"}, "handler"),
                            ("close", {}, "agent"), ("callback", {"satisfaction": "dissatisfied"}, "agent"),
                            ("dispatch", {}, "agent"), ("reply", {"reply": "再答复"}, "handler"),
                            ("close", {}, "agent")):
        if step == "callback":  # past the first deadline: the second close is on time by the reopening's
            app.state.clock.advance(timedelta(hours=30))
        headers = await (support.handler(app, organization) if who == "handler" else support.agent(app))
        assert (await order.post(step, headers, **body)).status_code == 200
    kept = await _counters(app)
    assert all(kept)
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, BEFORE_COUNTERS)
    await asyncio.to_thread(command.upgrade, config, "heads")
    assert await _counters(app) == kept
