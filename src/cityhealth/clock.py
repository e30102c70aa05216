"""The one source of "now". Services take a Clock; none calls datetime.now() itself.

Received times, upload days, release times, cut-offs and no-shows all hang on it, so the simulator and
the tests move a SimulatedClock through a month in minutes. Production always runs on SystemClock.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from cityhealth.errors import ValidationFailed

# Business days are Asia/Shanghai days; storage is UTC.
BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SimulatedClock:
    """A clock that only moves when told to. Refused in production (see create_app)."""

    def __init__(self, start: datetime) -> None:
        _require_aware(start)
        self._micros = _to_micros(start)  # whole microseconds since 1970: exact, and cheap to compare

    def now(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._micros)

    def set(self, moment: datetime) -> None:
        _require_aware(moment)
        micros = _to_micros(moment)
        if micros < self._micros:
            raise ValueError("the simulated clock never moves backwards")
        self._micros = micros

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)


def _to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_bounds(month: str) -> tuple[date, date]:
    """A "YYYY-MM" month's first and last day (Asia/Shanghai days: the statistics' counters are kept by business
    date); 422 naming `month` otherwise."""
    match = _MONTH.fullmatch(month)
    if match is None:
        raise ValidationFailed("a month is written YYYY-MM", field="month", value=month, rule="month.format")
    year, number = int(match[1]), int(match[2])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def business_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of an instant."""
    _require_aware(moment)
    return moment.astimezone(BUSINESS_TZ).date()


def business_midnight(day: date) -> datetime:
    """00:00 Asia/Shanghai of a day, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetimes are not accepted; give a timezone")
