"""Working days on China's holiday calendar, and work orders' deadlines counted in them. Pure: no database.

A working day is a Monday to Friday that is not a public holiday, or a weekend day the year's arrangement
makes a working day (调休上班). A year nobody set and the shipped file lacks counts weekends only: the
deadline is then earlier than the real one, never later, and `years_missing` says which years those are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from cityhealth.clock import BUSINESS_TZ, business_date


@dataclass(frozen=True)
class NamedDay:
    day: date
    kind: str  # "holiday" or "workday"
    name: str


@dataclass(frozen=True)
class YearDays:
    """One year's arrangement: where it comes from ("shipped", "set") and how sure it is."""

    year: int
    source: str
    status: str  # "official", "provisional" (shipped, adjusted days not yet known) or "set"
    note: str | None
    days: tuple[NamedDay, ...]


def _expand(ranges: Iterable[list[str]], kind: str) -> list[NamedDay]:
    days = []
    for first, last, name in ranges:
        day, end = date.fromisoformat(first), date.fromisoformat(last)
        while day <= end:
            days.append(NamedDay(day, kind, name))
            day += timedelta(days=1)
    return days


@cache
def shipped_years() -> dict[int, YearDays]:
    """The years shipped in hotline/data/holidays.json."""
    raw: dict[str, Any] = json.loads(
        resources.files("cityhealth.hotline").joinpath("data", "holidays.json").read_text("utf-8"))
    found = {}
    for year, entry in raw["years"].items():
        days = _expand(entry["holidays"], "holiday") + _expand(entry["workdays"], "workday")
        found[int(year)] = YearDays(int(year), "shipped", entry["status"], entry.get("note"),
                                    tuple(sorted(days, key=lambda named: named.day)))
    return found


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # adjusted working weekends
    years_missing: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, years: Iterable[YearDays], missing: Iterable[int] = ()) -> WorkCalendar:
        days = [named for year in years for named in year.days]
        return cls(frozenset(d.day for d in days if d.kind == "holiday"),
                   frozenset(d.day for d in days if d.kind == "workday"), frozenset(missing))

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (`start` itself when `days` is 0)."""
        day = start
        left = days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def deadline(self, moment: datetime, working_days: int) -> datetime:
        """The end (midnight after, Asia/Shanghai) of the `working_days`-th working day after `moment`'s day;
        0 is the end of that same day (an urgent order is due the day it comes)."""
        last = self.add_working_days(business_date(moment), working_days)
        return datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=BUSINESS_TZ)


def years_spanned(moment: datetime, working_days: int) -> list[int]:
    """The years a deadline of `working_days` from `moment` may reach (a long holiday spans the new year)."""
    first = business_date(moment).year
    last = business_date(moment + timedelta(days=2 * working_days + 30)).year
    return list(range(first, last + 1))
