"""The chronic programmes' rules on one follow-up: physiological ranges, the classification, the next step.

National basic public health service rules (domain.md §3): a hypertension patient is controlled below 140/90
mmHg, a diabetes patient below 7.0 mmol/L fasting glucose. The classification is the most serious finding (a new
complication, then an adverse reaction, then control or not); the targets and the classification are collection's
(`collection.service`), which applies them to the uploaded follow-ups, so the two rooms cannot disagree.
The next step: a controlled patient is seen again within three months (four follow-ups a year); a first
uncontrolled reading or an adverse reaction is rechecked within two weeks; a second uncontrolled reading in a row
or a new complication is referred, and checked within two weeks of the referral.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from cityhealth.collection.service import DBP_TARGET, SBP_TARGET, classify_followup, followup_controlled
from cityhealth.errors import ValidationFailed

ROUTINE, RECHECK, REFER = "routine", "recheck", "refer"
RECHECK_WITHIN = timedelta(days=14)
ROUTINE_MONTHS = 3
# What a living person's readings can be; outside, the reading was mistyped. The upload forms take the same
# pressure ranges; glucose starts at 1.0 (the form's 0 is no reading at all).
SBP_RANGE = (40, 300)
DBP_RANGE = (20, 200)
FBG_RANGE = (1.0, 50.0)


@dataclass(frozen=True)
class Readings:
    sbp: int
    dbp: int
    fbg_mmol_l: float | None
    adverse_reaction: bool
    new_complication: bool


@dataclass(frozen=True)
class Assessment:
    classification: str
    controlled: bool
    next_step: str
    due_on: date


def add_months(day: date, months: int) -> date:
    """The same day `months` later, the month's last day where it has no such day (31 Jan + 1 → 28/29 Feb)."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _range(field: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValidationFailed(f"{field} {value} {unit} is outside the physiological range {low}–{high}",
                               field=field, value=value, rule=f"chronic.{field}.range")


def check_readings(program: str, readings: Readings) -> None:
    """422 naming the field, the value and the rule for a reading no living patient has."""
    _range("sbp", readings.sbp, SBP_RANGE, "mmHg")
    _range("dbp", readings.dbp, DBP_RANGE, "mmHg")
    if readings.sbp <= readings.dbp:
        raise ValidationFailed(f"systolic {readings.sbp} mmHg must be above diastolic {readings.dbp} mmHg",
                               field="sbp", value=readings.sbp, rule="chronic.pressure.systolic_above_diastolic")
    if readings.fbg_mmol_l is None:
        if program == "diabetes":
            raise ValidationFailed("a diabetes follow-up needs its fasting glucose", field="fbg_mmol_l",
                                   value=None, rule="chronic.fbg_mmol_l.required")
        return
    _range("fbg_mmol_l", readings.fbg_mmol_l, FBG_RANGE, "mmol/L")


def _record(readings: Readings) -> dict[str, object]:
    return {"sbp": readings.sbp, "dbp": readings.dbp, "fbg_mmol_l": readings.fbg_mmol_l,
            "adverse_reaction": readings.adverse_reaction, "new_complication": readings.new_complication}


def is_controlled(program: str, readings: Readings) -> bool:
    return followup_controlled(program, _record(readings))


def bp_controlled(sbp: int, dbp: int) -> bool:
    """The HEARTS target: below 140/90."""
    return sbp < SBP_TARGET and dbp < DBP_TARGET


def assess(program: str, readings: Readings, visit_date: date, *, previous_controlled: bool | None) -> Assessment:
    """Classify a checked follow-up; `previous_controlled` is the patient's previous follow-up's control (None
    for the first)."""
    controlled = is_controlled(program, readings)
    classification = classify_followup(program, _record(readings))
    if readings.new_complication or (not controlled and previous_controlled is False):
        return Assessment(classification, controlled, REFER, visit_date + RECHECK_WITHIN)
    if not controlled or readings.adverse_reaction:
        return Assessment(classification, controlled, RECHECK, visit_date + RECHECK_WITHIN)
    return Assessment(classification, controlled, ROUTINE, add_months(visit_date, ROUTINE_MONTHS))
