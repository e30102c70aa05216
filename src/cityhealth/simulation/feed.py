"""A unit's month of uploads, produced day by day from its plan (never all at once: scale 1 is 201 M records)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.examples import make_record
from cityhealth.simulation.plan import (
    INPATIENT_FORMS,
    LATE_DELAY_DAYS,
    OUTPATIENT_FORMS,
    UnitPlan,
)

# Form numbers of domain.md §3 → the collection standard's form names.
FORM_NAMES = {
    "1": "patient_master_index", "2": "outpatient_visit", "3": "outpatient_diagnosis", "4": "prescription",
    "5": "lab_report", "6": "exam_report", "7": "admission", "8": "inpatient_order", "9": "surgery",
    "10": "discharge", "11": "settlement",
}
SEND_TIME = time(12, 0)  # units send at noon; conforming events happened that morning
EVENT_TIME = time(8, 0)

# Each rejected record breaks exactly one rule; the mix cycles through these.
_DEFECTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("outpatient_visit", {"patient_type_code": "7"}),  # code outside its table
    ("outpatient_visit", {"patient_type_code": "1", "patient_type_name": "住院"}),  # name does not match code
    ("outpatient_visit", {"visit_no": None}),  # required field missing
    ("patient_master_index", {"id_number": "BAD_ID"}),  # replaced by a bad check character below
    ("outpatient_visit", {"visit_time": "FUTURE"}),  # event time after receipt
)

CATEGORIES = ("conforming_out", "late_out", "conforming_in", "late_in", "backlog", "public_health", "rejected")


@dataclass(frozen=True)
class DayRecord:
    form: str  # the standard's form name
    record: dict[str, Any]


def _shares(count: int, days: list[int], offset: int) -> dict[int, int]:
    """Spread `count` over `days` evenly, the remainder going to the days from `offset` on."""
    if not days or count == 0:
        return {}
    base, extra = divmod(count, len(days))
    return {day: base + (1 if (index - offset) % len(days) < extra else 0) for index, day in enumerate(days)}


def allocate(unit: UnitPlan) -> dict[str, dict[int, int]]:
    """How many records of each category the unit sends on each of its upload days.

    Every upload day gets at least one record (so the unit's upload days are met exactly), and late
    records only go to days at least LATE_DELAY_DAYS into the month (their event stays in the month).
    """
    days = list(unit.upload_days)
    late_days = [day for day in days if day > LATE_DELAY_DAYS]
    counts = {
        "conforming_out": unit.outpatient.conforming if unit.outpatient else 0,
        "late_out": unit.outpatient.basis - unit.outpatient.conforming if unit.outpatient else 0,
        "conforming_in": unit.inpatient.conforming if unit.inpatient else 0,
        "late_in": unit.inpatient.basis - unit.inpatient.conforming if unit.inpatient else 0,
        "backlog": unit.backlog_accepted,
        "public_health": sum(unit.public_health.values()),
        "rejected": unit.rejected,
    }
    if (counts["late_out"] or counts["late_in"]) and not late_days:
        raise ValueError(f"{unit.name}: late records need an upload day after day {LATE_DELAY_DAYS}")
    allocation: dict[str, dict[int, int]] = {category: {} for category in CATEGORIES}
    # First one record on every upload day, from any category that may go there.
    remaining = dict(counts)
    for day in days:
        for category in CATEGORIES:
            allowed = day > LATE_DELAY_DAYS or not category.startswith("late")
            if remaining[category] and allowed:
                allocation[category][day] = 1
                remaining[category] -= 1
                break
        else:
            raise ValueError(f"{unit.name}: more upload days than records")
    offset = 0
    for category in CATEGORIES:
        eligible = late_days if category.startswith("late") else days
        for day, share in _shares(remaining[category], eligible, offset).items():
            allocation[category][day] = allocation[category].get(day, 0) + share
        offset += remaining[category]
    return allocation


class UnitFeed:
    """Produces a unit's records for any day of the month; record ids are unique within the unit."""

    def __init__(self, unit: UnitPlan, org_code: str, month_start: date, record_area: str) -> None:
        self.unit = unit
        self.org_code = org_code
        self.month_start = month_start
        self.record_area = record_area  # a 6-digit area code for public-health record numbers
        self.allocation = allocate(unit)
        self._serial = 0
        self._form_cursor: dict[str, int] = {}
        self._public_health_left = dict(unit.public_health)
        self._health_record_serial = 0

    def _next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:09d}"

    def _cycle(self, key: str, forms: tuple[str, ...]) -> str:
        index = self._form_cursor.get(key, 0)
        self._form_cursor[key] = index + 1
        return forms[index % len(forms)]

    def _moment(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=BUSINESS_TZ)

    def records_for(self, day_of_month: int) -> Iterator[DayRecord]:
        day = self.month_start + timedelta(days=day_of_month - 1)
        sent_at = self._moment(day, SEND_TIME)
        unit = self.unit
        group_forms = {
            "out": tuple(f for f in unit.forms if f in OUTPATIENT_FORMS),
            "in": tuple(f for f in unit.forms if f in INPATIENT_FORMS),
        }
        for group in ("out", "in"):
            forms = group_forms[group]
            for category, event_day in ((f"conforming_{group}", day),
                                        (f"late_{group}", day - timedelta(days=LATE_DELAY_DAYS))):
                for _ in range(self.allocation[category].get(day_of_month, 0)):
                    form = FORM_NAMES[self._cycle(category, forms)]
                    event = self._moment(event_day, EVENT_TIME)
                    yield DayRecord(form, make_record(form, self.org_code, self._next_id("C"), event))
        backlog_event = self._moment(self.month_start - timedelta(days=3), EVENT_TIME)
        for _ in range(self.allocation["backlog"].get(day_of_month, 0)):
            form = FORM_NAMES[self._cycle("backlog", unit.forms)]
            yield DayRecord(form, make_record(form, self.org_code, self._next_id("B"), backlog_event))
        for _ in range(self.allocation["public_health"].get(day_of_month, 0)):
            yield self._public_health_record(self._moment(day, EVENT_TIME))
        for _ in range(self.allocation["rejected"].get(day_of_month, 0)):
            yield self._rejected_record(self._moment(day, EVENT_TIME), sent_at)

    def _public_health_record(self, event: datetime) -> DayRecord:
        form = next(name for name, left in self._public_health_left.items() if left)
        self._public_health_left[form] -= 1
        self._health_record_serial += 1
        # 17 digits: area (6) + township (3) + village (3) + sequence (5), unique per new record.
        villages, sequence = divmod(self._health_record_serial, 100_000)
        township, village = divmod(villages, 1000)
        number = f"{self.record_area}{township % 1000:03d}{village:03d}{sequence:05d}"
        field = "record_no" if form == "health_record" else "health_record_no"
        overrides: dict[str, Any] = {field: number}
        if form == "health_record":
            overrides["address_area_code"] = self.record_area
        return DayRecord(form, make_record(form, self.org_code, self._next_id("H"), event, **overrides))

    def _rejected_record(self, event: datetime, sent_at: datetime) -> DayRecord:
        index = self._form_cursor.get("rejected", 0)
        self._form_cursor["rejected"] = index + 1
        form, overrides = _DEFECTS[index % len(_DEFECTS)]
        record = make_record(form, self.org_code, self._next_id("R"), event)
        for name, value in overrides.items():
            if value == "FUTURE":
                record[name] = (sent_at + timedelta(days=3)).astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S")
            elif value == "BAD_ID":
                number = str(record["id_number"])
                record[name] = number[:-1] + ("0" if number[-1] != "0" else "1")
            elif value is None:
                record.pop(name, None)
            else:
                record[name] = value
        return DayRecord(form, record)

    def workload(self, day_of_month: int, days_in_month: int) -> dict[str, Any]:
        """The unit's daily workload report: its month's visits and discharges spread over every day."""
        day = self.month_start + timedelta(days=day_of_month - 1)
        visits = _shares(self.unit.visits, list(range(1, days_in_month + 1)), 0)[day_of_month] \
            if self.unit.visits else 0
        discharges = _shares(self.unit.discharges, list(range(1, days_in_month + 1)), 0)[day_of_month] \
            if self.unit.discharges else 0
        return make_record("workload_daily", self.org_code, f"WL{day:%Y%m%d}", self._moment(day, EVENT_TIME),
                           outpatient_emergency_visits=visits, discharges=discharges)
