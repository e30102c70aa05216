"""The bulletin's booking tables, read from the counters the booking transaction keeps.

A booking counts in the business month it was made (confirmed), under its hospital, channel and app;
a later cancellation does not subtract (the bulletin counts bookings made). The cumulative total is
every counter up to the month plus the opening balances recorded on migration from an older platform.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import statistics_repository
from cityhealth.booking.models import OpeningBalance
from cityhealth.booking.schemas import (
    AppRow,
    BookingStatistics,
    HospitalRow,
    OpeningBalanceCreate,
    OpeningBalanceRead,
)
from cityhealth.clock import Clock
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

APP_CHANNELS = ("online_12320", "third_party")  # 分途径: neither phone nor in-clinic bookings
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def month_end(month: str) -> date:
    match = _MONTH.fullmatch(month)
    if match is None:
        raise ValidationFailed(f"month must be YYYY-MM, not {month!r}", code="invalid_month", field="month",
                               value=month, rule="booking.month_format")
    year, number = int(match.group(1)), int(match.group(2))
    return date(year, number, calendar.monthrange(year, number)[1])


async def monthly(session: AsyncSession, month: str) -> BookingStatistics:
    """The month's bookings by hospital × channel and by app, and the cumulative total at month end."""
    last_day = month_end(month)
    rows = await statistics_repository.month_by_hospital(session, month)
    hospitals: dict[int, dict[str, object]] = {}
    for organization_id, name, channel, count in rows:
        entry = hospitals.setdefault(organization_id, {"hospital": name, "online_12320": 0, "phone": 0,
                                                       "clinic": 0, "third_party": 0})
        entry[channel] = int(count)

    def subtotal(item: tuple[int, dict[str, object]]) -> tuple[int, int]:
        organization_id, entry = item
        total = sum(int(v) for k, v in entry.items() if k != "hospital")  # type: ignore[call-overload]
        return -total, organization_id  # the bulletin's order: largest first; ties in registration order

    by_hospital = [HospitalRow.model_validate(entry) for _, entry in sorted(hospitals.items(), key=subtotal)]
    # A hospital's own front-end (an app the hospital itself operates) is not a 分途径 route: the bulletin
    # leaves hospitals' own channels out of the app table, as it does phone and in-clinic bookings.
    app_rows = await statistics_repository.month_by_app(session, month, APP_CHANNELS)
    by_app = [AppRow(app=name, bookings=int(count))
              for _, name, count in sorted(app_rows, key=lambda r: (-int(r[2]), r[0]))]
    cumulative = await statistics_repository.bookings_made_until(session, month, last_day)
    return BookingStatistics(by_hospital=by_hospital, by_app=by_app, cumulative_at_month_end=cumulative)


async def record_opening_balance(session: AsyncSession, clock: Clock, principal: Principal,
                                 data: OpeningBalanceCreate) -> OpeningBalanceRead:
    """Record bookings made on an older platform (counted in every month ending on or after `as_of`).

    One balance per day: sending the same one again returns it, a different figure for that day is refused.
    """
    existing = await statistics_repository.opening_balance(session, data.as_of)
    if existing is not None:
        if existing.bookings != data.bookings:
            raise Conflict(f"an opening balance of {existing.bookings} is already recorded as of {data.as_of}",
                           code="opening_balance_exists", field="as_of", value=data.as_of.isoformat(),
                           rule="booking.opening_balance_once")
        return OpeningBalanceRead.model_validate(existing)
    row = OpeningBalance(as_of=data.as_of, bookings=data.bookings, note=data.note, recorded_by=principal.subject,
                         recorded_at=clock.now())
    session.add(row)
    await session.flush()
    record(session, clock, principal, Action.CREATE, "booking_opening_balance", resource_id=row.id)
    return OpeningBalanceRead.model_validate(row)
