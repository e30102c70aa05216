"""gather(): the month's sections from the hotline, booking and collection services, the region from the registry."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest

from cityhealth.booking import statistics as booking_statistics
from cityhealth.booking.schemas import OpeningBalanceCreate
from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.collection import configuration as collection_configuration
from cityhealth.collection import quality as collection_quality
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.hotline import reporting as hotline_reporting
from cityhealth.hotline import service as hotline_service
from cityhealth.hotline import work_order_intake
from cityhealth.hotline.schemas import CallEventReport, CityLineIn
from cityhealth.hotline.work_order_schemas import CityOrderPush
from cityhealth.registry import service as registry_service
from cityhealth.reporting.model import Region
from cityhealth.reporting.service import Edition, build_bulletin, render
from cityhealth.reporting.sources import gather
from cityhealth.security.principals import Role, Scope
from tests.factories.registry import SMALL_AREA_TREE, load_nanjing, organization_payload, seed_areas
from tests.factories.security import machine, staff
from tests.hotline.calls_support import call_events
from tests.hotline.work_orders_support import city_push


async def test_the_month_is_read_from_the_platforms_aggregates(
    database: Database, clock: SimulatedClock, nanjing_scenario: dict[str, Any]
) -> None:
    await load_nanjing(database, clock)
    async with database.transaction() as session:
        # What an operator migrating from the older platform records: the totals before June.
        before_june = date(2022, 5, 31)
        await booking_statistics.record_opening_balance(
            session, clock, staff(Role.BULLETIN_EDITOR), OpeningBalanceCreate(as_of=before_june, bookings=29343491)
        )
        await collection_configuration.record_opening_balance(
            session, clock, "accepted_total", 15931000000, before_june)
    async with database.transaction() as session:
        data = await gather(session, "2022-06")
    assert data.region == Region(code="320100", name="南京市")
    assert [area.model_dump() for area in data.areas] == nanjing_scenario["areas"]
    assert data.title == "南京市 2022年6月"
    assert data.booking is not None
    assert data.collection is not None
    assert data.booking.cumulative_at_month_end == 29343491
    assert data.collection.forms_total == 11
    assert data.collection.cumulative_accepted_at_month_end == 15931000000
    assert "159.31 亿条" in render(data, Edition.MD).decode("utf-8")


async def test_build_bulletin_refuses_a_malformed_month(database: Database) -> None:
    async with database.transaction() as session:
        with pytest.raises(ValidationFailed) as raised:
            await build_bulletin(session, "2022-13")
    assert raised.value.field == "month"


async def test_a_region_that_cannot_be_inferred_must_be_named(database: Database, clock: SimulatedClock) -> None:
    await seed_areas(database, clock)
    async with database.transaction() as session:
        with pytest.raises(ValidationFailed) as raised:
            await gather(session, "2022-06")  # no district reports anything: no region to infer
        assert raised.value.field == "region"
        data = await gather(session, "2022-06", region_code="320100")
    assert data.region == Region(code="320100", name="南京市")
    assert [area.code for area in data.areas] == sorted(
        area.code for area in SMALL_AREA_TREE if area.level in ("district", "reporting_unit")
    )


async def test_a_source_answering_for_another_month_is_refused(
    database: Database, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def other_month(session: Any, month: str) -> dict[str, Any]:
        return {"month": "2022-05", "forms_total": 11, "districts": [], "hospitals": [],
                "cumulative_accepted_at_month_end": 0}

    monkeypatch.setattr(collection_quality, "quality_report", other_month)
    await seed_areas(database, clock)
    async with database.transaction() as session:
        with pytest.raises(ValidationFailed, match="2022-05"):
            await gather(session, "2022-06", region_code="320100")


async def _report_calls(database: Database, clock: SimulatedClock, settings: Settings,
                        calls: list[tuple[str, str, str | None]]) -> None:
    async with database.transaction() as session:
        for line, city, name in (("025-12320", "320100", "南京市"), ("0513-12320", "320600", "南通市")):
            await hotline_service.put_city_line(session, clock, machine(Scope.HOTLINE_ADMIN), line,
                                                CityLineIn(city_code=city, city_name=name))
        events = [event for call_id, line, category in calls
                  for event in call_events(call_id, datetime(2022, 6, 8, 9, 0, tzinfo=BUSINESS_TZ), line=line,
                                           category=category)]
        await hotline_reporting.report_events(session, clock, settings, machine(Scope.HOTLINE_TELEPHONY),
                                              CallEventReport.model_validate({"events": events}))


async def test_the_hotline_section_is_read_from_the_months_calls(
        database: Database, clock: SimulatedClock, settings: Settings) -> None:
    await seed_areas(database, clock)
    await _report_calls(database, clock, settings, [("c-1", "025-12320", "phone_booking"),
                                                    ("c-2", "025-12320", "self_service_voice"),
                                                    ("c-3", "0513-12320", None)])
    async with database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
    assert data.hotline is not None
    assert [(row.city, row.calls) for row in data.hotline.calls_by_city] == [("320100", 2), ("320600", 1)]
    assert data.hotline.calls_by_category.model_dump() == {
        "consultation": 0, "complaint": 0, "phone_booking": 1, "manual_service": 0, "crisis_intervention": 0,
        "self_service_voice": 1}
    # The platform computes its work orders: none received is 0, and how they were worked stays out of the JSON.
    assert json.loads(render(data, Edition.JSON))["hotline"]["work_orders"] == {
        "city_12345": 0, "province_12345": 0, "self_received": 0}
    assert list(json.loads(render(data, Edition.JSON))["hotline"]) == [
        "calls_by_city", "calls_by_category", "work_orders"]


async def test_a_month_with_work_orders_and_no_calls_has_its_hotline_section(
        database: Database, clock: SimulatedClock, settings: Settings) -> None:
    await seed_areas(database, clock)
    async with database.transaction() as session:
        hospital = await registry_service.insert_organization(session, clock, organization_payload(code="NJH-A"))
        await work_order_intake.push_from_city(session, clock, settings, machine(Scope.HOTLINE_12345_CITY),
                                               CityOrderPush.model_validate(city_push(cbdw=hospital.code)))
    async with database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
    assert data.hotline is not None
    assert json.loads(render(data, Edition.JSON))["hotline"]["work_orders"] == {
        "city_12345": 1, "province_12345": 0, "self_received": 0}
    passage = render(data, Edition.MD).decode("utf-8")
    assert "市 12345 转来 1 件" in passage
    assert "当月办结工单 0 件，在办理时限内办结 0 件，按时办结率 /" in passage


async def test_a_region_call_without_a_category_holds_back_the_bulletin(
        database: Database, clock: SimulatedClock, settings: Settings) -> None:
    await seed_areas(database, clock)
    await _report_calls(database, clock, settings, [("c-1", "025-12320", "consultation"),
                                                    ("c-2", "025-12320", None)])
    async with database.transaction() as session:
        with pytest.raises(Conflict, match="sum to 1, not to its 2 calls"):
            await gather(session, "2022-06", region_code="320100")


async def test_a_month_without_calls_has_no_hotline_section(database: Database, clock: SimulatedClock) -> None:
    await seed_areas(database, clock)
    async with database.transaction() as session:
        data = await gather(session, "2022-06", region_code="320100")
    assert data.hotline is None
