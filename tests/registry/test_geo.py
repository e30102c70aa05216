"""The medical e-map's geometry: great-circle distances, the search box, the ranking, and GCJ-02 both ways."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhealth.registry import geo
from cityhealth.registry.facilities import is_open, rank
from cityhealth.registry.facility_repository import Candidate

latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
radii = st.floats(min_value=0.5, max_value=geo.MAX_DISTANCE_M, allow_nan=False)
# Points crowded where boxes go wrong: by the poles and either side of the 180th meridian.
polar_latitudes = st.one_of(st.floats(min_value=85, max_value=90), st.floats(min_value=-90, max_value=-85))
antimeridian_longitudes = st.one_of(st.floats(min_value=175, max_value=180), st.floats(min_value=-180, max_value=-175))
awkward_points = st.one_of(
    st.tuples(latitudes, longitudes), st.tuples(polar_latitudes, longitudes),
    st.tuples(latitudes, antimeridian_longitudes), st.tuples(polar_latitudes, antimeridian_longitudes))
# Inside the GCJ-02 rectangle, a little away from its edges (where the published shift is discontinuous).
china_latitudes = st.floats(min_value=1.0, max_value=55.6, allow_nan=False)
china_longitudes = st.floats(min_value=72.2, max_value=137.6, allow_nan=False)

# The published test vectors of the reference implementations: (WGS-84) -> (GCJ-02).
KNOWN_PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


# --- Distance -----------------------------------------------------------------------------------------


def test_a_quarter_of_the_equator_is_a_quarter_of_the_circumference() -> None:
    assert geo.great_circle_m(0, 0, 0, 90) == pytest.approx(math.pi / 2 * geo.EARTH_RADIUS_M, rel=1e-12)


def test_antipodes_are_half_the_circumference_apart() -> None:
    assert geo.great_circle_m(31.2, 121.5, -31.2, -58.5) == pytest.approx(geo.MAX_DISTANCE_M, rel=1e-12)


def test_the_pole_is_the_same_point_at_every_longitude() -> None:
    assert geo.great_circle_m(90, 0, 90, 137) == pytest.approx(0, abs=1e-6)


def test_one_metre_along_the_equator_measures_one_metre() -> None:
    step = math.degrees(1 / geo.EARTH_RADIUS_M)
    assert geo.great_circle_m(0, 179.99999, 0, 179.99999 + step) == pytest.approx(1.0, abs=1e-6)


def test_nanjing_to_shanghai_is_about_270_km() -> None:
    # 鼓楼 (Nanjing) to 人民广场 (Shanghai); the ellipsoid gives 268.9 km, within the sphere's 0.5 %.
    assert geo.great_circle_m(32.0603, 118.7969, 31.2304, 121.4737) == pytest.approx(268_900, rel=0.005)


@given(a=st.tuples(latitudes, longitudes), b=st.tuples(latitudes, longitudes))
def test_distance_is_symmetric_and_within_half_the_circumference(a: tuple[float, float],
                                                                   b: tuple[float, float]) -> None:
    there, back = geo.great_circle_m(*a, *b), geo.great_circle_m(*b, *a)
    assert there == pytest.approx(back, abs=1e-6)
    assert 0 <= there <= geo.MAX_DISTANCE_M * (1 + 1e-12)


@settings(max_examples=500)
@given(a=st.tuples(latitudes, longitudes), b=st.tuples(latitudes, longitudes))
def test_distance_agrees_with_the_haversine_formula(a: tuple[float, float], b: tuple[float, float]) -> None:
    # An independent formula; the haversine is trusted to a millimetre only short of the antipode.
    expected = _haversine_m(*a, *b)
    if expected < 0.99 * geo.MAX_DISTANCE_M:
        assert geo.great_circle_m(*a, *b) == pytest.approx(expected, abs=1e-3)


# --- The search box -----------------------------------------------------------------------------------


@settings(max_examples=2000)
@given(centre=awkward_points, radius=radii, point=awkward_points)
def test_every_point_within_the_radius_is_inside_the_box(centre: tuple[float, float], radius: float,
                                                           point: tuple[float, float]) -> None:
    if geo.great_circle_m(*centre, *point) <= radius:
        assert geo.bounding_box(*centre, radius).contains(*point)


@settings(max_examples=500)
@given(centre=awkward_points, radius=st.floats(min_value=0.5, max_value=2_000_000), bearing=st.floats(0, 360))
def test_a_point_on_the_circle_itself_is_inside_the_box(centre: tuple[float, float], radius: float,
                                                         bearing: float) -> None:
    lat, lon = _destination(*centre, radius * (1 - 1e-9), bearing)
    assert geo.bounding_box(*centre, radius).contains(lat, lon)


def test_a_box_across_the_180th_meridian_is_two_ranges() -> None:
    box = geo.bounding_box(0, 179.99, 5_000)
    assert len(box.longitudes) == 2
    assert box.contains(0, -179.99)
    assert box.contains(0, 179.97)
    assert not box.contains(0, 0)
    assert not box.contains(0, -179.9)


def test_a_circle_holding_a_pole_takes_every_longitude() -> None:
    box = geo.bounding_box(89.99, 10, 5_000)
    assert box.longitudes == ()
    assert box.max_lat == 90
    assert box.contains(89.99, -170)


def test_a_circle_of_half_the_circumference_takes_the_whole_globe() -> None:
    box = geo.bounding_box(32, 118, geo.MAX_DISTANCE_M)
    assert (box.min_lat, box.max_lat, box.longitudes) == (-90, 90, ())


def test_a_small_circle_in_nanjing_takes_a_small_box() -> None:
    box = geo.bounding_box(32.06, 118.79, 1_000)
    # 2 km of latitude, and the slack
    assert box.max_lat - box.min_lat == pytest.approx(2 * math.degrees(1_000 / geo.EARTH_RADIUS_M), abs=2e-7)
    [(west, east)] = box.longitudes
    assert 0.021 < east - west < 0.022  # 2 km at 32°N


# --- Ranking --------------------------------------------------------------------------------------------


def _candidates(points: list[tuple[float, float]]) -> list[Candidate]:
    return [Candidate(number, lat, lon) for number, (lat, lon) in enumerate(points, 1)]


@settings(max_examples=300)
@given(centre=awkward_points, radius=radii, points=st.lists(awkward_points, max_size=60))
def test_ranking_keeps_exactly_the_points_within_the_radius_nearest_first(
        centre: tuple[float, float], radius: float, points: list[tuple[float, float]]) -> None:
    found = _candidates(points)
    ranked, total = rank(found, *centre, radius)
    brute = sorted((geo.great_circle_m(*centre, c.latitude, c.longitude), c.organization_id) for c in found
                   if geo.great_circle_m(*centre, c.latitude, c.longitude) <= radius)
    assert [(d, c.organization_id) for d, c in ranked] == brute
    assert total == len(brute)


@settings(max_examples=300)
@given(centre=awkward_points, radius=radii, points=st.lists(awkward_points, max_size=60),
       first=st.integers(min_value=0, max_value=70))
def test_the_first_n_ranked_are_the_front_of_the_whole_ranking(
        centre: tuple[float, float], radius: float, points: list[tuple[float, float]], first: int) -> None:
    found = _candidates(points)
    whole, total = rank(found, *centre, radius)
    front, front_total = rank(found, *centre, radius, first=first)
    assert (front, front_total) == (whole[:first], total)


def test_equal_distances_are_ordered_by_organization_id() -> None:
    found = _candidates([(0, 1), (1, 0), (0, -1)])
    assert [c.organization_id for _, c in rank(reversed(found), 0, 0, 200_000)[0]] == [1, 2, 3]


# --- Opening hours --------------------------------------------------------------------------------------


def test_open_from_the_opening_minute_until_before_the_closing_one() -> None:
    hours = [(3, 480, 690), (3, 810, 1020)]
    assert [is_open(hours, 3, minute) for minute in (479, 480, 689, 690, 800, 810, 1019, 1020)] == [
        False, True, True, False, False, True, True, False]


def test_hours_of_another_weekday_do_not_open_today() -> None:
    assert not is_open([(4, 0, 1440)], 3, 600)


# --- GCJ-02 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN_PAIRS)
def test_the_forward_shift_gives_the_published_vectors(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert geo.wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), KNOWN_PAIRS)
def test_the_inverse_recovers_the_published_vectors_within_a_millimetre(
        wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    assert geo.great_circle_m(*geo.gcj02_to_wgs84(*gcj), *wgs) < 0.001


@settings(max_examples=1000)
@given(lat=china_latitudes, lon=china_longitudes)
def test_gcj02_round_trip_is_within_half_a_metre(lat: float, lon: float) -> None:
    assert geo.great_circle_m(*geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(lat, lon)), lat, lon) < 0.5


@settings(max_examples=300)
@given(lat=china_latitudes, lon=china_longitudes)
def test_the_shift_is_hundreds_of_metres_not_kilometres(lat: float, lon: float) -> None:
    assert 0 < geo.great_circle_m(*geo.wgs84_to_gcj02(lat, lon), lat, lon) < 1_500


@pytest.mark.parametrize(("place", "lat", "lon"), [
    ("Tokyo", 35.6812, 139.7671), ("London", 51.5072, -0.1276), ("Sydney", -33.8688, 151.2093),
    ("Moscow", 55.7558, 37.6173), ("Denver", 39.7392, -104.9903), ("Jakarta", -6.2088, 106.8456),
    ("Fiji", -17.7134, 178.0650),
])
def test_outside_the_gcj02_region_the_two_systems_coincide(place: str, lat: float, lon: float) -> None:
    assert geo.wgs84_to_gcj02(lat, lon) == (lat, lon)
    assert geo.gcj02_to_wgs84(lat, lon) == (lat, lon)


@given(point=awkward_points)
def test_near_the_poles_and_the_180th_meridian_nothing_is_shifted(point: tuple[float, float]) -> None:
    if not geo.in_gcj02_region(*point):
        assert geo.wgs84_to_gcj02(*point) == point


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * geo.EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def _destination(lat: float, lon: float, distance_m: float, bearing_deg: float) -> Any:
    """The point `distance_m` from (lat, lon) along the initial bearing, on the same sphere."""
    d = distance_m / geo.EARTH_RADIUS_M
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    phi2 = math.asin(max(-1.0, min(1.0, math.sin(phi) * math.cos(d)
                                   + math.cos(phi) * math.sin(d) * math.cos(theta))))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(d) * math.cos(phi),
                            math.cos(d) - math.sin(phi) * math.sin(phi2))
    lon2 = (math.degrees(lam2) + 540) % 360 - 180
    return math.degrees(phi2), lon2
