"""Request and response shapes of the medical e-map: a facility's profile, and a `near` search's answer.

Coordinates are degrees in the system `crs` names; the platform stores and answers WGS-84 (with the GCJ-02 pair
beside it, for a client drawing on a Chinese map). Ranges are checked here, so a bad one is a 422 naming the field.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from cityhealth.db.types import PageOffset
from cityhealth.registry import geo
from cityhealth.registry.models import FACILITY_SERVICES
from cityhealth.registry.schemas import BookingPhone

Crs = Literal["wgs84", "gcj02"]
Latitude = Annotated[float, Field(ge=geo.MIN_LATITUDE, le=geo.MAX_LATITUDE, allow_inf_nan=False,
                                  description="degrees north, -90 to 90")]
Longitude = Annotated[float, Field(ge=geo.MIN_LONGITUDE, le=geo.MAX_LONGITUDE, allow_inf_nan=False,
                                   description="degrees east, -180 to 180")]
MAX_NEAR_PAGE = 100
_CLOCK_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")


def _service(value: str) -> str:
    if value not in FACILITY_SERVICES:
        raise PydanticCustomError("facility.service", "must be one of {allowed}",
                                  {"allowed": ", ".join(FACILITY_SERVICES)})
    return value


def _clock_time(value: str) -> str:
    if not _CLOCK_TIME.fullmatch(value):
        raise PydanticCustomError("facility.hours_time", "must be HH:MM from 00:00 to 24:00")
    return value


ServiceCode = Annotated[str, AfterValidator(_service)]
ClockTime = Annotated[str, AfterValidator(_clock_time)]


def minutes_of(value: str) -> int:
    """Minutes after midnight of an HH:MM time (24:00 is 1440)."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def clock_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class OpeningInterval(BaseModel):
    """Open from `opens` until `closes` on an ISO weekday (1 = Monday), Asia/Shanghai; overnight hours are two
    intervals, one ending at 24:00 and one starting at 00:00 the next day."""

    model_config = ConfigDict(extra="forbid")

    weekday: Annotated[int, Field(ge=1, le=7)]
    opens: ClockTime
    closes: ClockTime

    @model_validator(mode="after")
    def _ordered(self) -> OpeningInterval:
        if minutes_of(self.opens) >= minutes_of(self.closes):
            raise PydanticCustomError("facility.hours_order", "opens must be before closes")
        return self


class FacilityProfileWrite(BaseModel):
    """The whole profile (a PUT): what is sent replaces what was there; the same body twice changes nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    latitude: Latitude
    longitude: Longitude
    crs: Crs = Field(default="wgs84", description="the system the coordinates are in; stored as WGS-84")
    phone: BookingPhone | None = Field(default=None, description="enquiries / switchboard")
    services: list[ServiceCode] = Field(default_factory=list, max_length=len(FACILITY_SERVICES))
    hours: list[OpeningInterval] = Field(default_factory=list, max_length=7 * 24)

    @model_validator(mode="after")
    def _consistent(self) -> FacilityProfileWrite:
        if len(set(self.services)) != len(self.services):
            raise PydanticCustomError("facility.service_repeated", "a service is listed twice")
        by_day = sorted((i.weekday, minutes_of(i.opens), minutes_of(i.closes)) for i in self.hours)
        for (day, _, closes), (next_day, next_opens, _) in itertools.pairwise(by_day):
            if day == next_day and next_opens < closes:
                raise PydanticCustomError("facility.hours_overlap", "two intervals of weekday {day} overlap",
                                          {"day": day})
        return self


class FacilityProfileRead(BaseModel):
    organization_id: int
    latitude: float = Field(description="WGS-84")
    longitude: float = Field(description="WGS-84")
    gcj02_latitude: float = Field(description="the same point in GCJ-02, as Chinese map services draw it")
    gcj02_longitude: float
    phone: str | None
    services: list[str]
    hours: list[OpeningInterval]
    updated_at: datetime


class NearQuery(BaseModel):
    """A `near` search: the circle, the filters and the page."""

    latitude: Latitude
    longitude: Longitude
    crs: Crs = "wgs84"
    radius_m: Annotated[float, Field(gt=0, le=geo.MAX_DISTANCE_M, allow_inf_nan=False)]
    service: ServiceCode | None = None
    open_now: bool = False
    limit: Annotated[int, Field(ge=1, le=MAX_NEAR_PAGE)] = 20
    offset: PageOffset = 0


class FacilityNear(BaseModel):
    """One facility a `near` search found, with its great-circle distance from the search's centre."""

    organization_id: int
    name: str
    short_name: str | None
    kind: str
    level: str | None
    distance_m: float = Field(description="great-circle distance from the centre, metres (0.1 m)")
    latitude: float
    longitude: float
    gcj02_latitude: float
    gcj02_longitude: float
    address_line: str | None
    address_district: str | None
    address_city: str | None
    phone: str | None
    booking_phone: str | None
    services: list[str]
    departments: list[str] = Field(description="the active departments' names")
    open_now: bool
    hours_today: list[str] = Field(description="today's opening intervals, HH:MM-HH:MM (Asia/Shanghai)")


class NearPage(BaseModel):
    items: list[FacilityNear]
    total: int = Field(description="facilities within the radius that pass the filters")
    limit: int
    offset: int
    latitude: float = Field(description="the search's centre, WGS-84")
    longitude: float
