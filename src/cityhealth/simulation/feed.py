"""A unit's month of uploads, produced day by day from its plan (never all at once: scale 1 is 201 M records)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson

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

VARIANTS = 256  # distinct contents of a form per unit and event time; the record id still differs
# One patient master record in IDENTIFIED_EVERY names a simulated resident (the others, the template's patients).
IDENTIFIED_EVERY = 2
PATIENT_MASTER = "patient_master_index"
OTHER_DOCUMENT = ("99", "其他法定有效证件")  # a patient registered without their ID number
SEX_NAMES = {1: "男", 2: "女"}
_ID_MARK = "@record-id@"

CATEGORIES = ("conforming_out", "late_out", "conforming_in", "late_in", "backlog", "public_health", "rejected")


@dataclass(frozen=True)
class PatientIdentity:
    """A resident as a hospital's patient master record names them: `document` None is the ID number; else
    (its number) another document, the ID number not given. The identity may disagree with the master index
    (a conflicting record: another person's name and phone beside the ID number)."""

    patient_id: str  # the hospital's own patient id
    id_number: str
    document: str | None
    name: str
    sex: int
    birth_date: date
    phone: str
    address_area_code: str

    def fields(self) -> dict[str, Any]:
        """The patient master record's identity fields."""
        code, type_name = OTHER_DOCUMENT if self.document is not None else ("01", "居民身份证")
        return {"patient_id": self.patient_id, "name": self.name, "id_type_code": code, "id_type_name": type_name,
                "id_number": self.document or self.id_number, "sex_code": str(self.sex),
                "sex_name": SEX_NAMES[self.sex], "birth_date": self.birth_date.strftime("%Y%m%d"),
                "phone": self.phone, "address_area_code": self.address_area_code}


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


def _line(item: DayRecord) -> bytes:
    return orjson.dumps({"form": item.form, **item.record})


class LineTemplates:
    """NDJSON lines of valid records that differ only in their record id, each shape built once.

    A record's fields follow from its form, its event time and a seed; taking the seed from VARIANTS values
    (by a hash of the record id) lets a unit's day of records be written by joining bytes, which is what
    makes a month at scale 1 (201 M records) cheaper to produce than to ingest.
    """

    def __init__(self, org_code: str, patients: tuple[PatientIdentity, ...] = ()) -> None:
        self.org_code = org_code
        self.patients = patients
        self._by_event: dict[datetime, dict[tuple[str, int], tuple[bytes, bytes]]] = {}

    def keep_only(self, events: tuple[datetime, ...]) -> None:
        """Forget the shapes of other event times (a unit's events move with the month's days)."""
        for event in [event for event in self._by_event if event not in events]:
            del self._by_event[event]

    def lines(self, forms: list[str], record_ids: list[str], event: datetime) -> Iterator[bytes]:
        """A line per record id, of the form beside it, all with the same event time."""
        shapes = self._by_event.setdefault(event, {})
        crc32 = zlib.crc32
        patients = self.patients
        for form, record_id in zip(forms, record_ids, strict=True):
            encoded = record_id.encode()
            key = (form, crc32(encoded) % VARIANTS)
            if patients and form == PATIENT_MASTER:
                who = crc32(b"patient:" + encoded)
                if who % IDENTIFIED_EVERY == 0:  # a resident's record: built whole, not from a shape
                    patient = patients[(who // IDENTIFIED_EVERY) % len(patients)]
                    record = make_record(form, self.org_code, record_id, event, seed=key[1], **patient.fields())
                    yield orjson.dumps({"form": form, **record})
                    continue
            parts = shapes.get(key)
            if parts is None:
                parts = shapes[key] = self._shape(form, event, key[1])
            yield parts[0] + encoded + parts[1]

    def _shape(self, form: str, event: datetime, variant: int) -> tuple[bytes, bytes]:
        record = make_record(form, self.org_code, _ID_MARK, event, seed=variant)
        head, mark, tail = orjson.dumps({"form": form, **record}).partition(orjson.dumps(_ID_MARK))
        if not mark:
            raise AssertionError(f"{form}: the record id is not in its line")
        return head + b'"', b'"' + tail


class UnitFeed:
    """Produces a unit's records for any day of the month; record ids are unique within the unit."""

    def __init__(self, unit: UnitPlan, org_code: str, month_start: date, record_area: str,
                 patients: tuple[PatientIdentity, ...] = ()) -> None:
        self.unit = unit
        self.org_code = org_code
        self.month_start = month_start
        self.record_area = record_area  # a 6-digit area code for public-health record numbers
        self.allocation = allocate(unit)
        self._serial = 0
        self._form_cursor: dict[str, int] = {}
        self._public_health_left = dict(unit.public_health)
        self._health_record_serial = 0
        self._templates = LineTemplates(org_code, patients)

    def _next_id(self, prefix: str) -> str:
        return self._next_ids(prefix, 1)[0]

    def _next_ids(self, prefix: str, count: int) -> list[str]:
        first = self._serial + 1
        self._serial += count
        return [f"{prefix}{serial:09d}" for serial in range(first, first + count)]

    def _cycle(self, key: str, forms: tuple[str, ...], count: int) -> list[str]:
        """The forms of the next `count` records of a category, taking the unit's forms in turn."""
        index = self._form_cursor.get(key, 0)
        self._form_cursor[key] = index + count
        return [FORM_NAMES[forms[i % len(forms)]] for i in range(index, index + count)]

    def _moment(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=BUSINESS_TZ)

    def lines_for(self, day_of_month: int) -> Iterator[bytes]:
        """The unit's records of the day as NDJSON lines, each naming its form."""
        day = self.month_start + timedelta(days=day_of_month - 1)
        sent_at = self._moment(day, SEND_TIME)
        unit = self.unit
        group_forms = {
            "out": tuple(f for f in unit.forms if f in OUTPATIENT_FORMS),
            "in": tuple(f for f in unit.forms if f in INPATIENT_FORMS),
        }
        backlog_event = self._moment(self.month_start - timedelta(days=3), EVENT_TIME)
        today, late = self._moment(day, EVENT_TIME), self._moment(day - timedelta(days=LATE_DELAY_DAYS), EVENT_TIME)
        self._templates.keep_only((today, late, backlog_event))
        for group in ("out", "in"):
            for category, event in ((f"conforming_{group}", today), (f"late_{group}", late)):
                count = self.allocation[category].get(day_of_month, 0)
                forms = self._cycle(category, group_forms[group], count)
                yield from self._templates.lines(forms, self._next_ids("C", count), event)
        count = self.allocation["backlog"].get(day_of_month, 0)
        yield from self._templates.lines(self._cycle("backlog", unit.forms, count), self._next_ids("B", count),
                                         backlog_event)
        for _ in range(self.allocation["public_health"].get(day_of_month, 0)):
            yield _line(self._public_health_record(today))
        for _ in range(self.allocation["rejected"].get(day_of_month, 0)):
            yield _line(self._rejected_record(today, sent_at))

    def body_for(self, day_of_month: int, days_in_month: int) -> bytes:
        """The unit's bulk upload of the day: its workload report, then its records, as NDJSON."""
        report = _line(DayRecord("workload_daily", self.workload(day_of_month, days_in_month)))
        return b"\n".join((report, *self.lines_for(day_of_month))) + b"\n"

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
