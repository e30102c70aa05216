"""The month's hotline statistics for the bulletin: the region city's categories are its calls (or an error
naming both numbers), the self-service answer rate, the work orders by source and how they were worked, each
counted in the month of its Asia/Shanghai days."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.errors import Conflict
from cityhealth.hotline.knowledge_answers import self_service
from cityhealth.hotline.knowledge_index import index_of
from cityhealth.hotline.knowledge_schemas import SelfServiceAsk
from cityhealth.hotline.statistics import monthly_statistics
from cityhealth.security.principals import Scope
from tests.factories.security import machine
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.knowledge_support import published_article
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

REPORT = "/api/hotline/call-events"
JUNE_3 = datetime(2022, 6, 3, 10, 0, tzinfo=BUSINESS_TZ)


async def _calls(app: FastAPI, client: httpx.AsyncClient, calls: list[tuple[str, str, str | None]]) -> None:
    await add_line(app)
    await add_line(app, line="0512-12320", city_code="320500", city_name="苏州市")
    events = [event for call_id, line, category in calls
              for event in call_events(call_id, JUNE_3, line=line, category=category)]
    response = await client.post(REPORT, headers=await telephony(app), json={"events": events})
    assert response.status_code == 200, response.text


async def test_the_region_citys_categories_are_its_calls_and_other_cities_count_whole(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await _calls(app, client, [("m-1", "025-12320", "phone_booking"), ("m-2", "025-12320", "phone_booking"),
                               ("m-3", "025-12320", "crisis_intervention"), ("m-4", "0512-12320", "complaint"),
                               ("m-5", "0512-12320", None)])
    async with app.state.database.transaction() as session:
        month = await monthly_statistics(session, "2022-06", "320100")
    assert (month.total, month.region_calls) == (5, 3)
    assert [(city.city, city.name, city.calls) for city in month.calls_by_city] == [
        ("320100", "南京市", 3), ("320500", "苏州市", 2)]
    # Only the region city's calls are counted by category; Suzhou's call without a category is no fault.
    assert month.calls_by_category == {"consultation": 0, "complaint": 0, "phone_booking": 2, "manual_service": 0,
                                       "crisis_intervention": 1, "self_service_voice": 0}
    assert month.peak_day is not None
    assert (month.peak_day.day.isoformat(), month.peak_day.calls) == ("2022-06-03", 5)
    assert month.peak_hour is not None
    assert (month.peak_hour.hour, month.peak_hour.calls) == (10, 5)
    assert month.work_orders.model_dump() == {"city_12345": 0, "province_12345": 0, "self_received": 0}
    assert month.work_order_performance.on_time_rate_pct is None  # nothing closed: not measured, not 0


async def test_a_region_call_without_a_category_is_refused_naming_both_numbers(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await _calls(app, client, [("u-1", "025-12320", "consultation"), ("u-2", "025-12320", None)])
    async with app.state.database.transaction() as session:
        with pytest.raises(Conflict) as refused:
            await monthly_statistics(session, "2022-06", "320100")
    assert refused.value.code == "hotline_categories_do_not_sum"
    assert refused.value.value == {"categories": 1, "calls": 2}
    assert "sum to 1, not to its 2 calls" in refused.value.message


async def test_the_answer_rate_counts_the_months_self_service_questions_in_business_time(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    await published_article(client, app)
    ivr = machine(Scope.HOTLINE_SELF_SERVICE, client_id="ivr-12320")
    for utterance, local, text in (
            ("q-5", datetime(2022, 5, 31, 23, 55, tzinfo=BUSINESS_TZ), "被狗咬了去哪打针"),  # May
            ("q-1", datetime(2022, 6, 1, 0, 5, tzinfo=BUSINESS_TZ), "被狗咬了去哪打针"),  # May 31 in UTC
            ("q-2", datetime(2022, 6, 15, 9, 0, tzinfo=BUSINESS_TZ), "狂犬疫苗接种地点"),
            ("q-3", datetime(2022, 6, 30, 23, 55, tzinfo=BUSINESS_TZ), "明天会下雨吗"),
            ("q-4", datetime(2022, 7, 1, 0, 5, tzinfo=BUSINESS_TZ), "明天会下雨吗")):  # July
        for _ in range(2):  # a retried utterance is one question
            async with app.state.database.transaction() as session:
                answer = await self_service(session, SimulatedClock(local), ivr, index_of(app.state),
                                            SelfServiceAsk(utterance_id=utterance, text=text))
        assert answer.answered is (utterance not in ("q-3", "q-4"))
    async with app.state.database.transaction() as session:
        month = await monthly_statistics(session, "2022-06", "320100")
    assert (month.self_service.asked, month.self_service.answered) == (3, 2)
    assert month.self_service.answer_rate_pct == "66.67"


async def test_a_month_without_questions_has_no_answer_rate(app: FastAPI) -> None:
    async with app.state.database.transaction() as session:
        month = await monthly_statistics(session, "2022-06", "320100")
    assert (month.total, month.region_calls, month.self_service.asked) == (0, 0, 0)
    assert month.self_service.answer_rate_pct is None
    assert month.peak_day is None


async def _push(app: FastAPI, client: httpx.AsyncClient, local: datetime, path: str,
                body: dict[str, object]) -> Steps:
    app.state.clock.set(local)
    headers = await (city(app) if path == CITY_PUSH else province(app))
    pushed = await client.post(path, headers=headers, json=body)
    assert pushed.status_code == 200, pushed.text
    return Steps(client, pushed.json()["work_order_id"])


async def test_the_months_work_orders_count_by_source_within_its_shanghai_days_with_how_they_were_worked(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    organization = (await organizations(app, "NJH-A"))["NJH-A"]
    await _push(app, client, datetime(2022, 6, 30, 23, 55, tzinfo=BUSINESS_TZ), CITY_PUSH, city_push("NJ-JUN"))
    first = await _push(app, client, datetime(2022, 7, 1, 0, 5, tzinfo=BUSINESS_TZ), CITY_PUSH,
                        city_push("NJ-1"))  # June 30 in UTC, July in Nanjing
    urgent = await _push(app, client, datetime(2022, 7, 12, 9, 0, tzinfo=BUSINESS_TZ), PROVINCE_PUSH,
                         province_push("JS-1", orderType="URGENT"))
    own = await client.post(ORDERS, headers=await agent(app), json={
        "request_key": "own-1", "category": "complaint", "title": "投诉", "content": "服务态度",
        "organization_id": organization})
    assert own.status_code == 200, own.text
    for order, satisfaction in ((first, "satisfied"), (urgent, "dissatisfied")):
        await order.post("dispatch", await agent(app))
        await order.post("reply", await handler(app, organization), reply="已处理")
        if order is urgent:  # the urgent order was due by the end of its day: closed the next, late
            app.state.clock.set(datetime(2022, 7, 13, 9, 0, tzinfo=BUSINESS_TZ))
        await order.post("close", await agent(app))
        await order.post("callback", await agent(app), satisfaction=satisfaction)
    await _push(app, client, datetime(2022, 8, 1, 0, 5, tzinfo=BUSINESS_TZ), PROVINCE_PUSH, province_push("JS-AUG"))
    async with app.state.database.transaction() as session:
        month = await monthly_statistics(session, "2022-07", "320100")
    assert month.work_orders.model_dump() == {"city_12345": 1, "province_12345": 1, "self_received": 1}
    assert month.work_order_performance.model_dump() == {
        "closed": 2, "closed_on_time": 1, "on_time_rate_pct": "50.00", "callbacks": 2, "satisfied": 1,
        "basically_satisfied": 0, "dissatisfied": 1, "satisfaction_rate_pct": "50.00"}
    assert month.total == 0  # work orders without calls: the figures stand on their own
