"""Date and time fields: yyyyMMdd(HHmmss) or ISO 8601 text to dates and UTC instants, parsed once per batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cityhealth.clock import BUSINESS_TZ, business_date
from cityhealth.collection.standard import FieldSpec
from cityhealth.collection.validation.findings import Sink

# Asia/Shanghai has kept UTC+8 without daylight saving since 1992: later wall times convert by subtraction.
_FIXED_OFFSET_FROM = 1992
_FIXED_OFFSET_YEAR = str(_FIXED_OFFSET_FROM)
_SHANGHAI_OFFSET = timedelta(hours=8)


def parse_date(value: str) -> date | None:
    """yyyyMMdd or ISO 8601 YYYY-MM-DD; None if neither or not a calendar date."""
    try:
        if len(value) == 8 and value.isascii() and value.isdigit():
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            return date.fromisoformat(value)
    except ValueError:
        return None
    return None


def parse_datetime(value: str) -> datetime | None:
    """yyyyMMddHHmmss (Asia/Shanghai wall time) or ISO 8601 with an offset; UTC, or None."""
    try:
        if len(value) == 14 and value.isascii() and value.isdigit():
            if value >= _FIXED_OFFSET_YEAR:
                # The C ISO parser checks the calendar and the clock; read as UTC, then shift by +08:00.
                return datetime.fromisoformat(value[:8] + "T" + value[8:] + "+00:00") - _SHANGHAI_OFFSET
            return datetime(
                int(value[:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[8:10]),
                int(value[10:12]),
                int(value[12:]),
                tzinfo=BUSINESS_TZ,
            ).astimezone(UTC)
        if 19 <= len(value) <= 35 and value[4] == "-" and value[10] in "T ":
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None or moment.utcoffset() is None:
                return None
            return moment.astimezone(UTC)
    except ValueError:
        return None
    return None


def parse_datetimes(values: list[str]) -> list[datetime | None]:
    """parse_datetime of each value. When every value is a compact wall time from 1992 on (a machine client's
    column), they are converted in one comprehension, with no call per value; if any of them is not a real
    calendar date and clock time, each value takes parse_datetime alone."""
    if values and min(values) >= _FIXED_OFFSET_YEAR and max(map(len, values)) == min(map(len, values)) == 14:
        digits = "".join(values)
        if digits.isascii() and digits.isdigit():
            read, offset = datetime.fromisoformat, _SHANGHAI_OFFSET
            try:
                return [read(f"{value[:8]}T{value[8:]}+00:00") - offset for value in values]
            except ValueError:
                pass
    return list(map(parse_datetime, values))


def parse_dates(values: list[str]) -> list[date | None]:
    """parse_date of each value; a column of compact dates (yyyyMMdd) in one pass, as parse_datetimes."""
    if values and max(map(len, values)) == min(map(len, values)) == 8:
        digits = "".join(values)
        if digits.isascii() and digits.isdigit():
            try:
                return list(map(date.fromisoformat, values))  # the basic form: the same calendar check as date()
            except ValueError:
                pass
    return list(map(parse_date, values))


def event_moment(spec: FieldSpec, value: Any) -> datetime | None:
    """The UTC instant of an event field: a date-time, or 00:00 Asia/Shanghai of a date."""
    if not isinstance(value, str):
        return None
    if spec.type == "datetime":
        return parse_datetime(value)
    day = parse_date(value)
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def cached_moment(sink: Sink, spec: FieldSpec, value: Any) -> datetime | None:
    """event_moment through the batch's cache: a column's values were parsed once by its own check."""
    if not isinstance(value, str):
        return None
    if spec.type == "datetime":
        moments = sink.moments
        if value in moments:
            return moments[value]
        moment = moments[value] = parse_datetime(value)
        return moment
    days = sink.days
    day = days[value] if value in days else days.setdefault(value, parse_date(value))
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def business_month(moment: datetime) -> int:
    """yyyymm of the Asia/Shanghai day of a UTC instant."""
    if moment.year >= _FIXED_OFFSET_FROM:
        wall = moment + _SHANGHAI_OFFSET
        return wall.year * 100 + wall.month
    day = business_date(moment)
    return day.year * 100 + day.month
