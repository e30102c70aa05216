"""Release policy per hospital (domain.md §4): when a session's slots open, when booking and cancelling close."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import ReleasePolicy
from cityhealth.clock import BUSINESS_TZ


@dataclass(frozen=True)
class ReleaseRules:
    """The effective rules; the defaults are domain.md's (a hospital without a policy row gets them)."""

    window_days: int = 7  # bookable from the next day up to day 7
    release_time: time = time(0, 0)  # day `window_days` opens at this time (Asia/Shanghai)
    same_day_allowed: bool = False
    next_day_cutoff: time = time(12, 0)  # booking for tomorrow closes at this time today
    cancellation_allowed: bool = True
    cancel_cutoff_days_before: int = 1  # cancellation closes this many days before the session …
    cancel_cutoff_time: time = time(16, 0)  # … at this time
    pickup_grace_minutes: int = 30  # check-in closes this long after the session starts
    hold_minutes: int = 15

    @classmethod
    def from_row(cls, row: ReleasePolicy | None) -> ReleaseRules:
        if row is None:
            return cls()
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def at_business_time(day: date, moment: time) -> datetime:
    """`moment` o'clock Asia/Shanghai on `day`, as an aware datetime."""
    return datetime.combine(day, moment, tzinfo=BUSINESS_TZ)


def released_at(rules: ReleaseRules, service_date: date) -> datetime:
    """When a session of `service_date` becomes bookable."""
    return at_business_time(service_date - timedelta(days=rules.window_days), rules.release_time)


def pickup_deadline(rules: ReleaseRules, starts_at: datetime) -> datetime:
    return starts_at + timedelta(minutes=rules.pickup_grace_minutes)


def cancellation_deadline(rules: ReleaseRules, service_date: date) -> datetime | None:
    """The last moment a booking may be cancelled, or None when the hospital allows no cancellation."""
    if not rules.cancellation_allowed:
        return None
    return at_business_time(service_date - timedelta(days=rules.cancel_cutoff_days_before), rules.cancel_cutoff_time)


async def rules_for(session: AsyncSession, organization_id: int) -> ReleaseRules:
    return ReleaseRules.from_row(await session.get(ReleasePolicy, organization_id))
