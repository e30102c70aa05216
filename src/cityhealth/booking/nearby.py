"""The medical e-map's `near` search with today's free slots: the registry finds and orders the facilities
(registry.service.near_facilities), the booking pool says what each has free today.

"Free" is the booking rule's answer (feed_free, as the availability search and the slot feed count it) for the
asking caller's channel at this moment: a hospital that takes no same-day bookings shows its sessions of today
but no free slot, since none could be booked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import feed_availability, feed_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.schemas import DepartmentSlots, NearbyFacility, NearbyPage, TodaySlots
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.registry.service import NearQuery, near_facilities
from cityhealth.security.principals import Principal


@dataclass
class _Tally:
    sessions: int = 0
    free: dict[tuple[int, str], int] = field(default_factory=dict)


async def today_free_slots(session: AsyncSession, database: Database, clock: Clock, runtime: BookingRuntime,
                           principal: Principal | None, organization_ids: Sequence[int]) -> dict[int, TodaySlots]:
    """Each organization's sessions of today and the slots the caller's channel could book in them now (every
    organization asked is in the answer, one without sessions with none); one read for them all."""
    now = clock.now()
    channel = await feed_availability.asking_channel(database, runtime, principal)
    rows = await feed_repository.sessions_of_day(await session.connection(), business_date(now), organization_ids,
                                                 now)
    tallies = {organization_id: _Tally() for organization_id in organization_ids}
    for row in rows:
        tally = tallies[row["organization_id"]]
        tally.sessions += 1
        free = feed_availability.available(row, channel, now)
        if free:
            key = (row["department_id"], row["department_name"])
            tally.free[key] = tally.free.get(key, 0) + free
    return {organization_id: TodaySlots(
        sessions=tally.sessions, free_slots=sum(tally.free.values()),
        by_department=[DepartmentSlots(department_id=department_id, department=name, free_slots=free)
                       for (department_id, name), free in sorted(tally.free.items(), key=lambda i: (-i[1], i[0]))])
        for organization_id, tally in tallies.items()}


async def nearby(session: AsyncSession, database: Database, clock: Clock, runtime: BookingRuntime,
                 principal: Principal | None, query: NearQuery) -> NearbyPage:
    """One page of the facilities near a point, nearest first, each with today's free slots."""
    found = await near_facilities(session, clock, query)
    slots = await today_free_slots(session, database, clock, runtime, principal,
                                   [item.organization_id for item in found.items])
    return NearbyPage(items=[NearbyFacility(**item.model_dump(), today=slots[item.organization_id])
                             for item in found.items],
                      total=found.total, limit=found.limit, offset=found.offset, latitude=found.latitude,
                      longitude=found.longitude)
