"""The calls' tallies equal a recount of the stored calls after any sequence of reports: events split over
reports in any order, sent again, a start after the end, agents' reclassifications in between."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cityhealth.clock import BUSINESS_TZ
from cityhealth.hotline import service
from cityhealth.hotline.models import CATEGORIES, OUTCOMES, Call, CallTally
from cityhealth.hotline.schemas import ReclassificationIn
from cityhealth.security.principals import Role
from tests.factories.security import staff
from tests.hotline.calls_support import add_line, call_events, on_loop, telephony

REPORT = "/api/hotline/call-events"
LINES = ("025-12320", "0512-12320")

calls = st.lists(st.tuples(
    st.sampled_from(LINES), st.integers(0, 29), st.integers(0, 23),  # line, day of June, hour
    st.one_of(st.none(), st.sampled_from(CATEGORIES)), st.sampled_from(OUTCOMES),
    st.one_of(st.none(), st.sampled_from(CATEGORIES)),  # an agent's category after some reports, or none
), min_size=1, max_size=5)


async def recount(app: FastAPI) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], int]]:
    """(the tallies that are not zero, the stored calls counted under their keys)."""
    async with app.state.database.transaction() as session:
        tallies = {tuple(row[:5]): row[5] for row in await session.execute(select(
            CallTally.business_date, CallTally.start_hour, CallTally.city_code, CallTally.category, CallTally.outcome,
            CallTally.calls).where(CallTally.calls != 0))}
        keys = (Call.business_date, Call.start_hour, func.coalesce(Call.city_code, ""),
                func.coalesce(Call.category, ""), func.coalesce(Call.outcome, ""))
        counted = {tuple(row[:5]): row[5] for row in await session.execute(
            select(*keys, func.count()).where(Call.business_date.is_not(None)).group_by(*keys))}
    return tallies, counted


async def test_the_tallies_are_a_recount_of_the_calls_after_any_reports(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    await add_line(app)
    await add_line(app, line="0512-12320", city_code="320500", city_name="苏州市")
    headers = await telephony(app)
    supervisor = staff(Role.HOTLINE_SUPERVISOR, user_id=9)
    numbers = itertools.count()
    run = on_loop(asyncio.get_running_loop())

    async def report(events: list[dict[str, Any]]) -> None:
        response = await client.post(REPORT, headers=headers, json={"events": events})
        assert response.status_code == 200, response.text

    async def reclassify(telephony_id: str, category: str) -> None:
        async with app.state.database.transaction() as session:
            call_id = await session.scalar(select(Call.id).where(Call.telephony_call_id == telephony_id))
            assert call_id is not None
            current = await session.scalar(select(Call.category).where(Call.id == call_id))
            if current != category:
                await service.reclassify(session, app.state.clock, app.state.settings, supervisor, call_id,
                                         ReclassificationIn(request_key="k", category=category, reason="heard"))

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calls, st.randoms(use_true_random=False), st.integers(1, 4))
    def reports_then_recount(drawn: list[tuple[Any, ...]], random: Any, reports: int) -> None:
        events, agents = [], []
        for line, day, hour, category, outcome, agents_category in drawn:
            call_id = f"t-{next(numbers)}"
            start = datetime(2022, 6, 1 + day, hour, 30, tzinfo=BUSINESS_TZ)
            events += call_events(call_id, start, line=line, category=category, outcome=outcome)
            if agents_category is not None:
                agents.append((call_id, agents_category))
        random.shuffle(events)  # any order: a start after its end, an answer before its queue
        events += random.sample(events, len(events) // 4)  # some sent again in a later report
        cuts = sorted(random.sample(range(1, len(events)), min(reports - 1, len(events) - 1)))
        for n, (first, last) in enumerate(itertools.pairwise([0, *cuts, len(events)])):
            run(report(events[first:last]))
            if n == 0:  # agents reclassify what the first report told of, before the rest comes
                for call_id, category in agents:
                    if any(event["call_id"] == call_id for event in events[first:last]):
                        run(reclassify(call_id, category))
        tallies, counted = run(recount(app))
        assert tallies == counted

    await asyncio.to_thread(reports_then_recount)
