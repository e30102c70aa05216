"""The demo's facility profiles: made from the reference institutions, inside Nanjing, the same on every load."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from tests.factories.registry import load_nanjing

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry import facilities, facility_reference, geo
from cityhealth.registry.facility_schemas import NearQuery, minutes_of
from cityhealth.registry.models import FACILITY_SERVICES

# The city's outline lies within this box (WGS-84): 溧水 and 高淳 in the south, 六合 in the north.
NANJING = {"lat": (31.14, 32.62), "lon": (118.36, 119.24)}
NANJING_CENTRE = (32.06, 118.79)


def _institutions() -> list[dict[str, Any]]:
    text = resources.files("cityhealth.registry.reference").joinpath("nanjing.json").read_text("utf-8")
    institutions: list[dict[str, Any]] = json.loads(text)["organizations"]
    return institutions


INSTITUTIONS = _institutions()
PROFILED = [i for i in INSTITUTIONS if i["kind"] in ("hospital", "community_health_centre")]


def test_every_hospital_and_community_centre_gets_a_profile_and_nothing_else_does() -> None:
    assert {i["name"] for i in INSTITUTIONS if facility_reference.demo_profile(i) is not None} == {
        i["name"] for i in PROFILED}
    assert len(PROFILED) == 45


@pytest.mark.parametrize("institution", PROFILED, ids=lambda i: i["name"])
def test_a_demo_facility_lies_inside_nanjing(institution: dict[str, Any]) -> None:
    made = facility_reference.demo_profile(institution)
    assert made is not None
    assert NANJING["lat"][0] < made.latitude < NANJING["lat"][1]
    assert NANJING["lon"][0] < made.longitude < NANJING["lon"][1]


def test_demo_facilities_in_a_known_district_lie_within_its_spread() -> None:
    gulou = [facility_reference.demo_profile(i) for i in PROFILED if i["area_code"] == "320106"]
    assert len(gulou) == 15
    assert all(p is not None and geo.great_circle_m(p.latitude, p.longitude, 32.07, 118.77) <= 2_520 for p in gulou)


def test_the_demo_facilities_are_spread_out_not_stacked() -> None:
    points = {(p.latitude, p.longitude) for p in map(facility_reference.demo_profile, PROFILED) if p is not None}
    assert len(points) == len(PROFILED)


def test_a_demo_profile_is_the_same_every_time() -> None:
    assert [facility_reference.demo_profile(i) for i in PROFILED] == [
        facility_reference.demo_profile(dict(i)) for i in PROFILED]


def test_demo_services_follow_the_institutions_category() -> None:
    by_name = {i["name"]: facility_reference.demo_profile(i) for i in PROFILED}
    children = by_name["南京市儿童医院"]
    centre = by_name["中央门社区卫生服务中心"]
    assert children is not None
    assert centre is not None
    assert {"paediatrics", "emergency"} <= set(children.services)
    assert {"family_doctor", "chronic_disease", "vaccination"} <= set(centre.services)
    assert "emergency" not in centre.services
    assert all(set(p.services) <= set(FACILITY_SERVICES) for p in by_name.values() if p is not None)


def test_a_demo_facility_with_an_emergency_department_is_open_around_the_clock() -> None:
    for institution in PROFILED:
        made = facility_reference.demo_profile(institution)
        assert made is not None
        intervals = [(h.weekday, minutes_of(h.opens), minutes_of(h.closes)) for h in made.hours]
        if "emergency" in made.services:
            assert all(facilities.is_open(intervals, day, minute) for day in range(1, 8) for minute in (0, 750, 1439))
        else:
            assert not facilities.is_open(intervals, 7, 23 * 60)  # nothing else opens on a Sunday night


def test_a_demo_facility_keeps_its_booking_phone_as_its_phone() -> None:
    gulou = next(i for i in PROFILED if i["name"] == "南京鼓楼医院")
    made = facility_reference.demo_profile(gulou)
    assert made is not None
    assert made.phone == gulou["booking_phone"]


async def test_the_loaded_demo_facilities_are_found_near_the_city_centre(database: Database,
                                                                         clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.sessions() as session:
        page = await facilities.near(session, clock, NearQuery(
            latitude=NANJING_CENTRE[0], longitude=NANJING_CENTRE[1], radius_m=150_000, limit=100))
    assert page.total == 45
    distances = [item.distance_m for item in page.items]
    assert distances == sorted(distances)
