"""gather(): the month's sections from the booking and collection services, the region from the registry."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cityhealth.booking import statistics as booking_statistics
from cityhealth.booking.schemas import OpeningBalanceCreate
from cityhealth.clock import SimulatedClock
from cityhealth.collection import configuration as collection_configuration
from cityhealth.collection import quality as collection_quality
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.reporting.model import Region
from cityhealth.reporting.service import Edition, build_bulletin, render
from cityhealth.reporting.sources import gather
from cityhealth.security.principals import Role
from tests.factories.registry import SMALL_AREA_TREE, load_nanjing, seed_areas
from tests.factories.security import staff


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
