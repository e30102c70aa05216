"""The work orders' days equal a recount of the stored events after any sequence of steps: intake from each
source, steps refused or retried, extensions, late closes, dissatisfied callbacks that reopen and close again."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cityhealth.clock import business_date
from cityhealth.hotline.work_order_events import Step, project
from cityhealth.hotline.work_order_models import WorkOrder, WorkOrderDay, WorkOrderEvent
from cityhealth.hotline.work_order_statistics import DAY_COUNTS
from tests.hotline import work_orders_support as support
from tests.hotline.calls_support import on_loop

ACTIONS = ("dispatch", "reply", "close", "callback:satisfied", "callback:basically_satisfied",
           "callback:dissatisfied", "extension-request", "extension-request/approve")
# A round of an order's work: an extension asked for (and approved or not), the hours until the close, the
# callback's satisfaction (dissatisfied reopens the order for another round), a step retried, a stray step.
rounds = st.lists(st.tuples(
    st.sampled_from(((), ("extension-request",), ("extension-request", "extension-request/approve"))),
    st.integers(0, 30), st.sampled_from(("satisfied", "basically_satisfied", "dissatisfied", None)),
    st.booleans(), st.one_of(st.none(), st.sampled_from(ACTIONS)),
), min_size=1, max_size=3)
orders = st.lists(st.tuples(st.sampled_from(("city", "province", "self")), rounds), min_size=1, max_size=3)


def actions_of(drawn: list[tuple[Any, ...]]) -> list[tuple[str, int, bool]]:
    """The steps of an order's rounds: (step, hours before it, retried)."""
    steps: list[tuple[str, int, bool]] = []
    for extension, hours, satisfaction, again, stray in drawn:
        steps += [("dispatch", 0, False), *((step, 1, again) for step in extension), ("reply", hours, False),
                  ("close", 1, again)]
        if stray is not None:
            steps.append((stray, 0, False))
        if satisfaction is None:
            break
        steps.append((f"callback:{satisfaction}", 2, again))
    return steps


async def recount(app: FastAPI) -> tuple[dict[tuple[Any, ...], Counter[str]], dict[tuple[Any, ...], Counter[str]]]:
    """(the days kept, the days counted again from every order's events as the projection judges them)."""
    async with app.state.database.transaction() as session:
        kept = {(row.business_date, row.source): Counter({name: getattr(row, name) for name in DAY_COUNTS})
                for row in await session.scalars(select(WorkOrderDay))}
        rows = await session.execute(select(WorkOrderEvent.work_order_id, WorkOrderEvent.seq, WorkOrderEvent.kind,
                                            WorkOrderEvent.at, WorkOrderEvent.data, WorkOrder.source)
                                     .join(WorkOrder, WorkOrder.id == WorkOrderEvent.work_order_id))
    steps: dict[int, list[Step]] = defaultdict(list)
    sources: dict[int, str] = {}
    counted: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for order_id, seq, kind, at, data, source in rows:
        steps[order_id].append(Step(seq, kind, at, dict(data)))
        sources[order_id] = source
        if kind == "received":
            counted[(business_date(at), source)]["received"] += 1
        elif kind == "callback":
            counted[(business_date(at), source)][data["satisfaction"]] += 1
    for order_id, order_steps in steps.items():
        for closed_at, on_time in project(order_steps).closings:
            counted[(business_date(closed_at), sources[order_id])]["closed"] += 1
            counted[(business_date(closed_at), sources[order_id])]["closed_on_time"] += on_time
    return ({key: +counts for key, counts in kept.items() if +counts},
            {key: +counts for key, counts in counted.items() if +counts})


async def test_the_days_are_a_recount_of_the_events_after_any_steps(app: FastAPI, client: httpx.AsyncClient) -> None:
    organization = (await support.organizations(app, "NJH-A"))["NJH-A"]
    # Headers made as each request goes: the clock moves on past a token's lifetime.
    headers = {"city": lambda: support.city(app), "province": lambda: support.province(app),
               "agent": lambda: support.agent(app), "supervisor": lambda: support.supervisor(app),
               "handler": lambda: support.handler(app, organization)}
    numbers = itertools.count()
    run = on_loop(asyncio.get_running_loop())

    async def receive(source: str) -> support.Steps:
        number = next(numbers)
        if source == "city":
            response = await client.post(support.CITY_PUSH, headers=await headers["city"](),
                                         json=support.city_push(f"NJ-{number}"))
        elif source == "province":
            response = await client.post(support.PROVINCE_PUSH, headers=await headers["province"](),
                                         json=support.province_push(f"JS-{number}", orderType="URGENT"))
        else:
            response = await client.post(support.ORDERS, headers=await headers["agent"](), json={
                "request_key": f"own-{number}", "category": "complaint", "title": "t", "content": "c",
                "organization_id": organization})
        assert response.status_code == 200, response.text
        return support.Steps(client, response.json()["work_order_id"])

    async def take(order: support.Steps, action: str, again: bool) -> None:
        step, _, satisfaction = action.partition(":")
        body: dict[str, Any] = {
            "dispatch": {}, "reply": {"reply": "答复"}, "close": {},
            "callback": {"satisfaction": satisfaction},
            "extension-request": {"working_days": 2, "reason": "需要调查"},
            "extension-request/approve": {}}[step]
        who = {"reply": "handler", "extension-request": "handler", "extension-request/approve": "supervisor"}
        key = f"{action.replace('/', '.')}-{order.order_id}-{order.n}"
        for _ in range(2 if again else 1):  # a retry with its key is the same step
            response = await order.post(step, await headers[who.get(step, "agent")](), key=key, **body)
            assert response.status_code in (200, 409), response.text

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(orders)
    def steps_then_recount(drawn: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        for source, order_rounds in drawn:
            order = run(receive(source))
            for action, hours, again in actions_of(order_rounds):
                app.state.clock.advance(timedelta(hours=hours))
                run(take(order, action, again))
        kept, counted = run(recount(app))
        assert kept == counted

    await asyncio.to_thread(steps_then_recount)
