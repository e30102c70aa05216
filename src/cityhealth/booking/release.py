"""Release policy per hospital (domain.md §4): when a session's slots open, when booking and cancelling close."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.models import BookingSession, ReleasePolicy
from cityhealth.clock import BUSINESS_TZ, Clock


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


async def set_policy(session: AsyncSession, clock: Clock, organization_id: int, rules: ReleaseRules) -> ReleaseRules:
    """Store a hospital's policy and move the release time of its sessions not yet released."""
    now = clock.now()
    row = await session.get(ReleasePolicy, organization_id)
    if row is None:
        row = ReleasePolicy(organization_id=organization_id, updated_at=now, **rules.as_dict())
        session.add(row)
    else:
        for name, value in rules.as_dict().items():
            setattr(row, name, value)
        row.updated_at = now
    await session.flush()
    pending = (await session.execute(
        select(BookingSession.id, BookingSession.service_date, BookingSession.starts_at).where(
            BookingSession.organization_id == organization_id, BookingSession.released_at > now)
    )).all()
    for session_id, service_date, starts_at in pending:
        await session.execute(update(BookingSession).where(BookingSession.id == session_id).values(
            released_at=released_at(rules, service_date), pickup_deadline=pickup_deadline(rules, starts_at),
            updated_at=now))
    return rules
