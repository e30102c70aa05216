"""BulletinData: one month's statistics in the shape of the scenario format (`cityhealth-scenario/1`).

The JSON edition of the bulletin is this model written out: same keys, same key order, same number
formats as docs/scenario-format.md and the bundled simulation/scenarios/nanjing-2022-06.json. Field order in
every class below is the file's key order; do not reorder fields.
"""

from __future__ import annotations

import calendar
import json
import re
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, Strict, model_validator

SCENARIO_FORMAT: Final = "cityhealth-scenario/1"

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_PERCENT = re.compile(r"-?\d+\.\d{2}")
_CENT = Decimal("0.01")


def _parse_percent(value: object) -> object:
    """Percentages travel as strings with exactly two decimals ("78.00"); a Decimal from code is accepted too."""
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            raise ValueError(f'a percentage is a string with two decimals such as "78.00", not {value!r}')
        return Decimal(value)
    if isinstance(value, Decimal):
        if value != value.quantize(_CENT):
            raise ValueError(f"a percentage has at most two decimals, not {value}")
        return value.quantize(_CENT)
    raise ValueError(f'a percentage is a string such as "78.00" or null, not {type(value).__name__}')


def _write_percent(value: Decimal) -> str:
    return f"{value:.2f}"


Count = Annotated[int, Strict(), Field(ge=0)]
Percent = Annotated[Decimal, BeforeValidator(_parse_percent), PlainSerializer(_write_percent, return_type=str)]
Month = Annotated[str, Field(pattern=_MONTH.pattern)]


def month_parts(month: str) -> tuple[int, int]:
    """(year, month number) of a "YYYY-MM" month; ValueError if it is not one."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"a month is written YYYY-MM (e.g. 2022-06), not {month!r}")
    year, number = month.split("-")
    return int(year), int(number)


def days_in_month(month: str) -> int:
    year, number = month_parts(month)
    return calendar.monthrange(year, number)[1]


class _Section(BaseModel):
    # Unknown keys are refused: a misspelt field in a scenario must not silently read as missing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Section):
    code: str
    name: str


class AreaRef(_Section):
    code: str
    name: str


# --- hotline ---


class CityCalls(_Section):
    city: str
    name: str
    calls: Count


class CallsByCategory(_Section):
    consultation: Count
    complaint: Count
    phone_booking: Count
    manual_service: Count
    crisis_intervention: Count
    self_service_voice: Count


class WorkOrders(_Section):
    city_12345: Count
    province_12345: Count
    self_received: Count


class WorkOrderPerformance(_Section):
    """How the month's work orders were worked: printed in the hotline passage, not part of the scenario format."""

    closed: Count
    closed_on_time: Count
    on_time_rate_pct: Percent | None
    callbacks: Count
    satisfied: Count
    basically_satisfied: Count
    dissatisfied: Count
    satisfaction_rate_pct: Percent | None


class HotlineSection(_Section):
    calls_by_city: list[CityCalls]
    calls_by_category: CallsByCategory
    # None when a scenario file gives none: the key is then absent from the JSON edition too.
    work_orders: WorkOrders | None = None
    # The platform's own figures beside the format: printed, never written to the JSON edition.
    work_order_performance: WorkOrderPerformance | None = Field(default=None, exclude=True)

    def calls_of(self, city: str) -> int:
        return sum(row.calls for row in self.calls_by_city if row.city == city)


# --- booking ---


class HospitalBookings(_Section):
    hospital: str
    online_12320: Count
    phone: Count
    clinic: Count
    third_party: Count

    @property
    def subtotal(self) -> int:
        """小计: the printed row total, the sum of the four channels."""
        return self.online_12320 + self.phone + self.clinic + self.third_party


class AppBookings(_Section):
    app: str
    bookings: Count


class BookingSection(_Section):
    by_hospital: list[HospitalBookings]
    by_app: list[AppBookings]
    cumulative_at_month_end: Count


# --- telemed (docs/decisions/telemed-statistics.md says what each figure counts) ---


class TopUploader(_Section):
    hospital: str
    count: Count


class TelemedNetwork(_Section):
    """One remote-diagnosis network; each network carries only some of these keys, written in this order."""

    members: Count | None = None
    cities: list[str] | None = None
    members_by_kind: dict[str, Count] | None = None
    areas_not_covered: list[str] | None = None
    areas_covered: Count | None = None
    cases_month: Count | None = None
    reports_month: Count | None = None
    specimens_routed_month: Count | None = None
    images_month: Count | None = None
    consultations_month: Count | None = None
    consultations_cumulative: Count | None = None
    top_uploaders: list[TopUploader] | None = None
    # The members the platform counted where the format carries members by kind only (teleconsultation):
    # printed and checked, never written to the JSON edition.
    members_counted: Count | None = Field(default=None, exclude=True)

    @property
    def members_total(self) -> int:
        """The members the paragraph prints: as counted, else the format's figure, else the kinds added up."""
        if self.members is not None:
            return self.members
        if self.members_counted is not None:
            return self.members_counted
        return sum((self.members_by_kind or {}).values())


class Pathology(_Section):
    hospitals: Count
    experts: Count
    doctors: Count
    cases: Count
    reports: Count
    case_discussions: Count
    video_lectures: Count


class TelemedSection(_Section):
    consultation: TelemedNetwork | None = None
    ecg: TelemedNetwork | None = None
    lab: TelemedNetwork | None = None
    imaging: TelemedNetwork | None = None
    pathology: Pathology | None = None


# --- collection ---


class HealthRecords(_Section):
    basic: Count
    hypertension: Count
    diabetes: Count


class DistrictCollection(_Section):
    area: str
    name: str
    uploaded_records: Count
    upload_days: Count
    realtime_forms: Count
    outpatient_visits: Count
    discharges: Count
    outpatient_conformance_basis: Count | None
    discharge_conformance_basis: Count | None
    outpatient_conformance_pct: Percent | None
    discharge_conformance_pct: Percent | None
    health_records_cumulative: HealthRecords

    @property
    def label(self) -> str:
        return self.name


class HospitalCollection(_Section):
    hospital: str
    uploaded_records: Count
    upload_days: Count
    realtime_forms: Count
    outpatient_visits: Count
    discharges: Count
    outpatient_conformance_basis: Count | None
    discharge_conformance_basis: Count | None
    outpatient_conformance_pct: Percent | None
    discharge_conformance_pct: Percent | None

    @property
    def label(self) -> str:
        return self.hospital


class CollectionSection(_Section):
    forms_total: Count
    districts: list[DistrictCollection]
    hospitals: list[HospitalCollection]
    cumulative_accepted_at_month_end: Count


class BulletinData(_Section):
    """One month of bulletin statistics; a section the platform does not (yet) compute is None."""

    format: Literal["cityhealth-scenario/1"] = SCENARIO_FORMAT
    title: str
    month: Month
    region: Region
    areas: list[AreaRef]
    hotline: HotlineSection | None = None
    booking: BookingSection | None = None
    telemed: TelemedSection | None = None
    collection: CollectionSection | None = None

    @model_validator(mode="after")
    def _region_calls_are_their_categories(self) -> BulletinData:
        """The region city's calls are exactly its calls by category (domain.md §5)."""
        if self.hotline is not None:
            categories = sum(self.hotline.calls_by_category.model_dump().values())
            calls = self.hotline.calls_of(self.region.code)
            if categories != calls:
                raise ValueError(f"hotline: the region city {self.region.code}'s calls by category sum to "
                                 f"{categories}, not to its {calls} calls")
        return self

    @property
    def year_number(self) -> int:
        return month_parts(self.month)[0]

    @property
    def month_number(self) -> int:
        return month_parts(self.month)[1]

    @classmethod
    def from_json(cls, text: str | bytes) -> BulletinData:
        """Parse a scenario-format document (raises pydantic.ValidationError naming the key at fault)."""
        return cls.model_validate_json(text)

    def to_document(self) -> dict[str, Any]:
        """The scenario-format document as plain JSON values, absent sections left out (not written as null)."""
        document = self.model_dump(mode="json", exclude={"telemed"})
        for section in ("hotline", "booking", "collection"):
            if document[section] is None:
                del document[section]
        if self.hotline is not None and self.hotline.work_orders is None:
            del document["hotline"]["work_orders"]
        if self.telemed is not None:
            # Networks carry different keys; the missing ones are absent in the format, never null.
            telemed = self.telemed.model_dump(mode="json", exclude_none=True)
            document = _insert_before(document, "collection", "telemed", telemed)
        return document

    def to_json(self) -> str:
        """The JSON edition, formatted as the scenario files are (one-space indent, UTF-8, final newline)."""
        return json.dumps(self.to_document(), ensure_ascii=False, indent=1) + "\n"


def _insert_before(document: dict[str, Any], anchor: str, key: str, value: Any) -> dict[str, Any]:
    if anchor not in document:
        return document | {key: value}
    result: dict[str, Any] = {}
    for existing, item in document.items():
        if existing == anchor:
            result[key] = value
        result[existing] = item
    return result
