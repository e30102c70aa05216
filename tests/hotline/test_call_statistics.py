"""The month's call figures: per city and per category, each summing to the total; the peak day and hour."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ
from cityhealth.errors import ValidationFailed
from cityhealth.hotline.statistics import call_statistics
from tests.hotline.calls_support import add_line, call_events, telephony

REPORT = "/api/hotline/call-events"
# (telephony id, line, local start, category)
CALLS = [
    ("s-1", "025-12320", datetime(2022, 6, 3, 9, 10, tzinfo=BUSINESS_TZ), "consultation"),
    ("s-2", "025-12320", datetime(2022, 6, 3, 9, 40, tzinfo=BUSINESS_TZ), "phone_booking"),
    ("s-3", "025-12320", datetime(2022, 6, 3, 14, 5, tzinfo=BUSINESS_TZ), "phone_booking"),
    ("s-4", "025-12320", datetime(2022, 6, 20, 9, 55, tzinfo=BUSINESS_TZ), None),
    ("s-5", "0512-12320", datetime(2022, 6, 20, 10, 0, tzinfo=BUSINESS_TZ), "complaint"),
    ("s-6", "0512-12320", datetime(2022, 6, 30, 23, 59, tzinfo=BUSINESS_TZ), "crisis_intervention"),
    ("s-7", "025-12320", datetime(2022, 7, 1, 0, 1, tzinfo=BUSINESS_TZ), "consultation"),  # July here, June 30 in UTC
    ("s-8", "025-12320", datetime(2022, 5, 31, 23, 0, tzinfo=BUSINESS_TZ), "consultation"),
]


async def _month(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_line(app)
    await add_line(app, line="0512-12320", city_code="320500", city_name="苏州市")
    events = [event for call_id, line, local, category in CALLS
              for event in call_events(call_id, local, line=line, category=category)]
    response = await client.post(REPORT, headers=await telephony(app), json={"events": events})
    assert response.status_code == 200, response.text


async def test_the_months_calls_by_city_and_category_sum_to_the_total(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _month(app, client)
    async with app.state.database.transaction() as session:
        figures = await call_statistics(session, "2022-06")
    assert figures.total == 6
    assert [(c.city, c.name, c.calls) for c in figures.by_city] == [("320100", "南京市", 4), ("320500", "苏州市", 2)]
    assert figures.by_category == {"consultation": 1, "complaint": 1, "phone_booking": 2, "manual_service": 0,
                                   "crisis_intervention": 1, "self_service_voice": 0, "uncategorized": 1}
    assert sum(figures.by_category.values()) == sum(c.calls for c in figures.by_city) == figures.total
    assert figures.by_city_and_category["320500"]["complaint"] == 1


async def test_the_peak_day_and_hour_are_in_business_time(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _month(app, client)
    async with app.state.database.transaction() as session:
        figures = await call_statistics(session, "2022-06")
    assert figures.peak_day is not None
    assert figures.peak_hour is not None
    assert (figures.peak_day.day.isoformat(), figures.peak_day.calls) == ("2022-06-03", 3)
    assert (figures.peak_hour.hour, figures.peak_hour.calls) == (9, 3)


async def test_a_month_without_calls_has_no_peaks(app: FastAPI) -> None:
    async with app.state.database.transaction() as session:
        figures = await call_statistics(session, "2021-02")
    assert figures.total == 0
    assert figures.peak_day is None
    assert figures.peak_hour is None


async def test_a_malformed_month_is_refused(app: FastAPI) -> None:
    async with app.state.database.transaction() as session:
        with pytest.raises(ValidationFailed) as refused:
            await call_statistics(session, "2022-13")
    assert (refused.value.field, refused.value.rule) == ("month", "month.format")
