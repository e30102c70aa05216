"""The demo's facility profiles, made from the reference institutions rather than typed per hospital.

Each hospital and community health centre of a reference data set gets a position near its district's centre, a
phone, the services its kind and WS 218 category imply, and the opening hours usual for its kind. Every choice
that varies (the offset from the centre, an optional service, Saturday hours) comes from a hash of the
institution's name, so loading the set again gives the same profile and changes nothing. The positions are
invented: plausible (inside the right district of Nanjing), not the institutions' real ones.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from cityhealth.registry.facility_schemas import FacilityProfileWrite, OpeningInterval

# Approximate centres (WGS-84 degrees) of the districts' built-up areas, and how far (km) a facility may lie from
# one; a reference institution whose district is unknown is placed in the city's centre, with a wider spread.
_DISTRICTS: dict[str, tuple[float, float, float]] = {
    "320100": (32.0500, 118.7800, 6.0),  # 南京市 (district unknown)
    "320102": (32.0480, 118.8000, 2.5),  # 玄武区
    "320104": (32.0200, 118.7950, 2.5),  # 秦淮区
    "320105": (32.0000, 118.7300, 3.0),  # 建邺区
    "320106": (32.0700, 118.7700, 2.5),  # 鼓楼区
    "320111": (32.0600, 118.6300, 5.0),  # 浦口区
    "320113": (32.1100, 118.9000, 5.0),  # 栖霞区
    "320114": (31.9900, 118.7600, 3.5),  # 雨花台区
    "320115": (31.9500, 118.8400, 6.0),  # 江宁区
    "320116": (32.3200, 118.8300, 5.0),  # 六合区
    "320117": (31.6500, 119.0300, 4.0),  # 溧水区
    "320118": (31.3300, 118.8800, 4.0),  # 高淳区
}
_PROFILED_KINDS = ("hospital", "community_health_centre")
_HOSPITAL_CORE = ("outpatient", "pharmacy", "laboratory", "imaging")
# What a WS 218 category adds to a hospital's core (by the category's leading characters, longest first).
_CATEGORY_SERVICES: dict[str, tuple[str, ...]] = {
    "A100": ("emergency", "inpatient", "physical_exam", "fever_clinic"),  # 综合医院
    "A210": ("tcm", "inpatient", "rehabilitation"),  # 中医医院
    "A300": ("tcm", "emergency", "inpatient"),  # 中西医结合医院
    "A511": ("dental",),  # 口腔医院
    "A519": ("paediatrics", "emergency", "inpatient", "fever_clinic"),  # 儿童医院
    "A520": ("mental_health", "inpatient"),  # 精神病医院
    "G100": ("maternity", "paediatrics", "vaccination"),  # 妇幼保健院
    "A5": ("inpatient",),  # other specialist hospitals
}
_CENTRE_SERVICES = ("outpatient", "pharmacy", "vaccination", "family_doctor", "chronic_disease", "laboratory")
_MAYBE = ("rehabilitation", "tcm", "physical_exam")  # each added to some, by the name's hash


def _draws(name: str) -> list[float]:
    """Eight numbers in [0, 1) fixed by the name."""
    digest = hashlib.sha256(name.encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _position(area_code: str | None, draws: list[float]) -> tuple[float, float]:
    """A point within the district's spread of its centre, uniform over the disc."""
    lat, lon, spread_km = _DISTRICTS.get(area_code or "", _DISTRICTS["320100"])
    distance_km = spread_km * math.sqrt(draws[0])
    bearing = 2 * math.pi * draws[1]
    north_km, east_km = distance_km * math.cos(bearing), distance_km * math.sin(bearing)
    return (round(lat + north_km / 111.2, 6),
            round(lon + east_km / (111.2 * math.cos(math.radians(lat))), 6))


def _category_services(category: str | None) -> tuple[str, ...]:
    for prefix in sorted(_CATEGORY_SERVICES, key=len, reverse=True):
        if category and category.startswith(prefix):
            return _CATEGORY_SERVICES[prefix]
    return ()


def _hours(kind: str, services: set[str], draws: list[float]) -> list[OpeningInterval]:
    if "emergency" in services:  # an emergency department never closes
        return [OpeningInterval(weekday=day, opens="00:00", closes="24:00") for day in range(1, 8)]
    if kind == "community_health_centre":
        days = range(1, 7) if draws[6] < 0.5 else range(1, 6)
        return [interval for day in days for interval in (
            OpeningInterval(weekday=day, opens="08:00", closes="11:30"),
            OpeningInterval(weekday=day, opens="13:30", closes="17:00"))]
    closes_saturday = "12:00" if draws[6] < 0.5 else "17:00"
    return [OpeningInterval(weekday=day, opens="08:00", closes="17:30") for day in range(1, 6)] + [
        OpeningInterval(weekday=6, opens="08:00", closes=closes_saturday)]


def demo_profile(institution: Mapping[str, Any]) -> FacilityProfileWrite | None:
    """The demo profile of a reference institution, or None for one residents do not visit (a district platform,
    an institution outside the region)."""
    kind = institution["kind"]
    if kind not in _PROFILED_KINDS:
        return None
    draws = _draws(institution["name"])
    if kind == "hospital":
        services = {*_HOSPITAL_CORE, *_category_services(institution.get("ws218_type"))}
    else:
        services = set(_CENTRE_SERVICES)
    services |= {service for service, draw in zip(_MAYBE, draws[3:6], strict=True) if draw < 0.4}
    latitude, longitude = _position(institution.get("area_code"), draws)
    phone = institution.get("booking_phone") or f"025-{int(draws[7] * 9e7) + 10_000_000:08d}"
    return FacilityProfileWrite(latitude=latitude, longitude=longitude, crs="wgs84", phone=phone,
                                services=sorted(services), hours=_hours(kind, services, draws))
