"""The `near` search against the database: the SQL box never drops a facility within the radius, anywhere on
the globe (the poles, the 180th meridian), and the pages are cut from the exact ordering."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry import facilities, geo
from cityhealth.registry.facility_schemas import MAX_NEAR_PAGE, FacilityProfileWrite, NearQuery
from cityhealth.registry.models import Organization


def _spots(rng: random.Random) -> list[tuple[float, float]]:
    """Facilities everywhere, crowded where a box goes wrong: by both poles and both sides of the 180th meridian."""
    spots = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(60)]
    spots += [(rng.uniform(84, 90), rng.uniform(-180, 180)) for _ in range(40)]
    spots += [(rng.uniform(-90, -84), rng.uniform(-180, 180)) for _ in range(40)]
    spots += [(rng.uniform(-60, 60), rng.choice([-1, 1]) * rng.uniform(178, 180)) for _ in range(50)]
    spots += [(rng.uniform(31.9, 32.2), rng.uniform(118.6, 119.0)) for _ in range(30)]  # a city
    spots += [(90.0, 0.0), (-90.0, 45.0), (0.0, 180.0), (0.0, -180.0), (12.5, 180.0), (-12.5, -180.0)]
    return spots


async def _place(database: Database, clock: SimulatedClock,
                 spots: list[tuple[float, float]]) -> dict[int, tuple[float, float]]:
    now = clock.now()
    placed: dict[int, tuple[float, float]] = {}
    async with database.transaction() as session:
        for number, (lat, lon) in enumerate(spots):
            organization = Organization(code=f"GEO{number:04d}", name=f"测试机构{number}", kind="hospital",
                                        active_from=date(2000, 1, 1), created_at=now, updated_at=now)
            session.add(organization)
            await session.flush()
            await facilities.put_profile(session, clock, None, organization.id,
                                         FacilityProfileWrite(latitude=lat, longitude=lon))
            placed[organization.id] = (lat, lon)
    return placed


async def _all_pages(session: AsyncSession, clock: SimulatedClock, lat: float, lon: float,
                     radius_m: float) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []
    offset = 0
    while True:
        page = await facilities.near(session, clock, NearQuery(latitude=lat, longitude=lon, radius_m=radius_m,
                                                               limit=MAX_NEAR_PAGE, offset=offset))
        found += [(item.organization_id, item.distance_m) for item in page.items]
        offset += MAX_NEAR_PAGE
        if offset >= page.total:
            assert len(found) == page.total
            return found


def _brute_force(placed: dict[int, tuple[float, float]], lat: float, lon: float,
                 radius_m: float) -> list[tuple[int, float]]:
    measured = sorted((geo.great_circle_m(lat, lon, *spot), organization_id)
                      for organization_id, spot in placed.items())
    return [(organization_id, round(d, 1)) for d, organization_id in measured if d <= radius_m]


async def test_every_facility_within_the_radius_is_found_in_order_anywhere_on_the_globe(
        database: Database, clock: SimulatedClock) -> None:
    rng = random.Random(17)
    placed = await _place(database, clock, _spots(rng))
    spots = list(placed.values())
    centres = [rng.choice(spots) for _ in range(20)] + [
        (89.9, 10.0), (-89.95, -100.0), (0.0, 179.999), (0.0, -179.999), (45.0, 180.0), (-30.0, -180.0),
        (32.06, 118.79), (90.0, 0.0), (-90.0, 0.0)]
    radii = [1_000.0, 50_000.0, 300_000.0, 1_500_000.0, 7_000_000.0, geo.MAX_DISTANCE_M]
    async with database.sessions() as session:
        for lat, lon in centres:
            for radius in rng.sample(radii, 3):
                assert await _all_pages(session, clock, lat, lon, radius) == _brute_force(placed, lat, lon, radius), (
                    lat, lon, radius)


async def test_a_facility_exactly_on_the_other_side_of_the_180th_meridian_is_found(
        database: Database, clock: SimulatedClock) -> None:
    placed = await _place(database, clock, [(10.0, 179.9995), (10.0, -179.9995), (10.0, 179.0)])
    east, west, _far = placed
    async with database.sessions() as session:
        page = await facilities.near(session, clock, NearQuery(latitude=10.0, longitude=-179.9995, radius_m=1_000))
    assert [item.organization_id for item in page.items] == [west, east]
    assert page.items[1].distance_m == pytest.approx(geo.great_circle_m(10.0, -179.9995, 10.0, 179.9995), abs=0.1)


async def test_around_a_pole_every_longitude_is_searched(database: Database, clock: SimulatedClock) -> None:
    placed = await _place(database, clock, [(89.99, lon) for lon in (-179.0, -90.0, 0.0, 90.0, 179.0)])
    async with database.sessions() as session:
        page = await facilities.near(session, clock, NearQuery(latitude=89.995, longitude=45.0, radius_m=2_000))
    assert sorted(item.organization_id for item in page.items) == sorted(placed)


async def test_pages_follow_one_another_in_distance_order(database: Database, clock: SimulatedClock) -> None:
    placed = await _place(database, clock, [(32.0 + step / 100, 118.8) for step in range(7)])
    async with database.sessions() as session:
        pages = [await facilities.near(session, clock, NearQuery(latitude=32.0, longitude=118.8, radius_m=10_000,
                                                                 limit=3, offset=offset)) for offset in (0, 3, 6)]
    assert [[item.organization_id for item in page.items] for page in pages] == [
        list(placed)[0:3], list(placed)[3:6], list(placed)[6:7]]
    assert {page.total for page in pages} == {7}


async def test_an_organization_no_longer_active_is_not_on_the_map(database: Database, clock: SimulatedClock) -> None:
    placed = await _place(database, clock, [(32.0, 118.8), (32.001, 118.8)])
    closed, _open = placed
    async with database.transaction() as session:
        organization = await session.get(Organization, closed)
        assert organization is not None
        organization.active_to = date(2022, 6, 1)
    async with database.sessions() as session:
        page = await facilities.near(session, clock, NearQuery(latitude=32.0, longitude=118.8, radius_m=1_000))
    assert [item.organization_id for item in page.items] == [_open]
