"""Scenario files (`cityhealth-scenario/1`): a city's month in the shape of its bulletin's statistics."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityhealth.errors import ValidationFailed

FORMAT = "cityhealth-scenario/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Region(_Strict):
    code: str
    name: str


class AreaRef(_Strict):
    code: str
    name: str


class HospitalBookings(_Strict):
    hospital: str
    online_12320: int = Field(ge=0)
    phone: int = Field(ge=0)
    clinic: int = Field(ge=0)
    third_party: int = Field(ge=0)


class AppBookings(_Strict):
    app: str
    bookings: int = Field(ge=0)


class BookingSection(_Strict):
    by_hospital: list[HospitalBookings]
    by_app: list[AppBookings]
    cumulative_at_month_end: int = Field(ge=0)


class CityCalls(_Strict):
    city: str = Field(pattern=r"^[0-9]{6}$")
    name: str = Field(min_length=1, max_length=32)
    calls: int = Field(ge=0)


class CallsByCategory(_Strict):
    consultation: int = Field(ge=0)
    complaint: int = Field(ge=0)
    phone_booking: int = Field(ge=0)
    manual_service: int = Field(ge=0)
    crisis_intervention: int = Field(ge=0)
    self_service_voice: int = Field(ge=0)


class WorkOrders(_Strict):
    city_12345: int = Field(ge=0)
    province_12345: int = Field(ge=0)
    self_received: int = Field(ge=0)


class HotlineSection(_Strict):
    calls_by_city: list[CityCalls]
    calls_by_category: CallsByCategory
    work_orders: WorkOrders | None = None


class HealthRecords(_Strict):
    basic: int = Field(ge=0)
    hypertension: int = Field(ge=0)
    diabetes: int = Field(ge=0)


class CollectionRow(_Strict):
    uploaded_records: int = Field(ge=0)
    upload_days: int = Field(ge=0, le=31)
    realtime_forms: int = Field(ge=0, le=11)
    outpatient_visits: int = Field(ge=0)
    discharges: int = Field(ge=0)
    outpatient_conformance_basis: int | None = Field(default=None, ge=1)
    outpatient_conformance_pct: str | None = None
    discharge_conformance_basis: int | None = Field(default=None, ge=1)
    discharge_conformance_pct: str | None = None

    @field_validator("outpatient_conformance_pct", "discharge_conformance_pct")
    @classmethod
    def _percentage(cls, value: str | None) -> str | None:
        if value is not None and not (Decimal(0) <= Decimal(value) <= Decimal(100)):
            raise ValueError(f"percentage {value!r} is outside 0–100")
        return value


class DistrictRow(CollectionRow):
    area: str
    name: str
    health_records_cumulative: HealthRecords


class HospitalRow(CollectionRow):
    hospital: str


class CollectionSection(_Strict):
    forms_total: int = 11
    districts: list[DistrictRow]
    hospitals: list[HospitalRow]
    cumulative_accepted_at_month_end: int = Field(ge=0)


class Uploader(_Strict):
    hospital: str
    count: int = Field(ge=0)


class TelemedNetwork(_Strict):
    """One network's paragraph: structure (members, kinds, areas, cities, top uploaders) and the month's volumes."""

    members: int | None = Field(None, ge=0)
    members_by_kind: dict[str, int] = Field(default_factory=dict)
    cities: list[str] = Field(default_factory=list)
    areas_not_covered: list[str] = Field(default_factory=list)
    areas_covered: int = Field(0, ge=0)
    cases_month: int = Field(0, ge=0)
    reports_month: int = Field(0, ge=0)
    images_month: int = Field(0, ge=0)
    specimens_routed_month: int = Field(0, ge=0)
    consultations_month: int = Field(0, ge=0)
    consultations_cumulative: int = Field(0, ge=0)
    top_uploaders: list[Uploader] = Field(default_factory=list)


class PathologyTotals(_Strict):
    hospitals: int = Field(ge=0)
    experts: int = Field(ge=0)
    doctors: int = Field(ge=0)
    cases: int = Field(ge=0)
    reports: int = Field(ge=0)
    case_discussions: int = Field(ge=0)
    video_lectures: int = Field(ge=0)


class TelemedSection(_Strict):
    consultation: TelemedNetwork | None = None
    ecg: TelemedNetwork | None = None
    lab: TelemedNetwork | None = None
    imaging: TelemedNetwork | None = None
    pathology: PathologyTotals | None = None


class Scenario(_Strict):
    format: str
    title: str = ""
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    region: Region
    areas: list[AreaRef]
    hotline: HotlineSection | None = None
    booking: BookingSection | None = None
    collection: CollectionSection | None = None
    telemed: TelemedSection | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != FORMAT:
            raise ValueError(f"unknown scenario format {value!r}; expected {FORMAT!r}")
        return value

    @model_validator(mode="after")
    def _region_calls_are_their_categories(self) -> Scenario:
        if self.hotline is not None:
            categories = sum(self.hotline.calls_by_category.model_dump().values())
            calls = sum(row.calls for row in self.hotline.calls_by_city if row.city == self.region.code)
            if categories != calls:
                raise ValueError(f"hotline: the region city {self.region.code}'s calls by category sum to "
                                 f"{categories}, not to its {calls} calls")
        return self


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; errors name the field at fault."""
    source = Path(path)
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"cannot read scenario {source}: {exc}", field="scenario", value=str(source),
                               rule="scenario.readable") from exc
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValidationFailed(f"scenario {source}: {where}: {first['msg']}", field=where,
                               rule="scenario.format") from exc


def bundled_scenario(name: str) -> Path:
    """A scenario shipped with the package (`nanjing-2022-06`)."""
    path = Path(str(files("cityhealth.simulation").joinpath("scenarios", f"{name}.json")))
    if not path.exists():
        raise ValidationFailed(f"no bundled scenario {name!r}", field="scenario", value=name,
                               rule="scenario.unknown")
    return path


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def scaled(value: int, scale: Decimal) -> int:
    """A volume at `scale`: r(value × scale)."""
    return round_half_up(Decimal(value) * scale)
