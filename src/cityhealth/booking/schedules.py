"""Hospitals publish sessions (through the API or from weekly templates); residents search availability."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import feed_availability, feed_free, feed_repository, repository, schedule_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.models import CHANNELS, BookingSession, ReleasePolicy, SessionTemplate
from cityhealth.booking.release import (
    ReleaseRules,
    at_business_time,
    pickup_deadline,
    released_at,
    rules_for,
)
from cityhealth.booking.schemas import (
    AvailabilityRead,
    GenerateRequest,
    GenerateResult,
    PolicyRead,
    PolicyUpdate,
    Quotas,
    SessionCreate,
    SessionRead,
    TemplateCreate,
    TemplateRead,
)
from cityhealth.clock import Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, DomainError, NotFound, ValidationFailed
from cityhealth.registry.models import Department, Organization, Practitioner
from cityhealth.security.principals import Principal, Scope

MAX_SEARCH_DAYS = 31


def session_read(row: BookingSession) -> SessionRead:
    return SessionRead(
        id=row.id, organization_id=row.organization_id, department_id=row.department_id,
        practitioner_id=row.practitioner_id, external_id=row.external_id, service_date=row.service_date,
        starts_at=row.starts_at, ends_at=row.ends_at, pickup_deadline=row.pickup_deadline,
        released_at=row.released_at, fee_class=row.fee_class, capacity=row.capacity, booked=row.booked,
        available=row.capacity - row.booked, status=row.status,
        quotas={channel: getattr(row, f"quota_{channel}") for channel in CHANNELS})


async def organization_for(session: AsyncSession, principal: Principal, organization_id: int | None) -> int:
    """The hospital a schedule write is for: the caller's own, or any for a booking administrator."""
    organization_id = organization_id if organization_id is not None else principal.organization_id
    if organization_id is None:
        raise ValidationFailed("organization_id is required", code="organization_required",
                               field="organization_id", rule="required")
    allowed = principal.has(Scope.BOOKING_ADMIN) or principal.organization_id == organization_id
    if not allowed or await session.get(Organization, organization_id) is None:
        raise NotFound(f"no organization {organization_id}", code="organization_not_found",
                       field="organization_id", value=organization_id)
    return organization_id


async def _check_refs(session: AsyncSession, organization_id: int, department_id: int,
                      practitioner_id: int | None) -> None:
    department = await session.get(Department, department_id)
    if department is None or department.organization_id != organization_id or not department.is_active:
        raise ValidationFailed(f"department {department_id} is not an active department of this hospital",
                               code="unknown_department", field="department_id", value=department_id,
                               rule="booking.department")
    if practitioner_id is not None:
        practitioner = await session.get(Practitioner, practitioner_id)
        if practitioner is None or practitioner.organization_id != organization_id or not practitioner.is_active:
            raise ValidationFailed(f"practitioner {practitioner_id} is not an active practitioner of this hospital",
                                   code="unknown_practitioner", field="practitioner_id", value=practitioner_id,
                                   rule="booking.practitioner")


def _quota_values(quotas: Quotas, capacity: int) -> dict[str, int | None]:
    values = {f"quota_{channel}": getattr(quotas, channel) for channel in CHANNELS}
    reserved = sum(v for v in values.values() if v is not None)
    if reserved > capacity:
        raise ValidationFailed(f"the channel quotas reserve {reserved} slots, more than the capacity {capacity}",
                               code="quota_exceeds_capacity", field="quotas", value=reserved,
                               rule="booking.quota_within_capacity")
    return values


async def _create(session: AsyncSession, clock: Clock, organization_id: int, rules: ReleaseRules, *,
                  external_id: str, department_id: int, practitioner_id: int | None, service_date: date,
                  start_time: Any, end_time: Any, capacity: int, fee_class: str, quotas: dict[str, int | None],
                  template_id: int | None = None) -> BookingSession:
    now = clock.now()
    starts_at = at_business_time(service_date, start_time)
    reserved = sum(v for v in quotas.values() if v is not None)
    row = BookingSession(
        organization_id=organization_id, department_id=department_id, practitioner_id=practitioner_id,
        external_id=external_id, template_id=template_id, service_date=service_date, starts_at=starts_at,
        ends_at=at_business_time(service_date, end_time), pickup_deadline=pickup_deadline(rules, starts_at),
        released_at=released_at(rules, service_date), fee_class=fee_class, capacity=capacity, booked=0,
        slot_map="0" * capacity, last_slot_no=0, open_capacity=capacity - reserved, open_booked=0,
        status="open", created_at=now, updated_at=now,
        **quotas, **{f"booked_{channel}": 0 for channel in CHANNELS})
    session.add(row)
    await session.flush()
    return row


def _resize(row: BookingSession, capacity: int, quotas: dict[str, int | None]) -> None:
    """Change capacity and quotas of a session that may have bookings, never below what is taken."""
    highest_taken = row.slot_map.rfind("1") + 1
    if capacity < highest_taken:
        raise Conflict(f"slot {highest_taken} is booked; the capacity cannot go below it",
                       code="capacity_below_booked", field="capacity", value=capacity, rule="booking.capacity")
    open_booked = 0
    for channel in CHANNELS:
        quota, booked = quotas[f"quota_{channel}"], getattr(row, f"booked_{channel}")
        if quota is None:
            open_booked += booked
        elif quota < booked:
            raise Conflict(f"the {channel} channel already holds {booked} slots, more than the quota {quota}",
                           code="quota_below_booked", field=f"quotas.{channel}", value=quota, rule="booking.quota")
    open_capacity = capacity - sum(v for v in quotas.values() if v is not None)
    if open_booked > open_capacity:
        raise Conflict("the channels without a quota hold more slots than the quotas leave them",
                       code="quota_below_booked", field="quotas", rule="booking.quota")
    row.slot_map = (row.slot_map + "0" * capacity)[:capacity]
    row.capacity, row.open_capacity, row.open_booked = capacity, open_capacity, open_booked
    for name, value in quotas.items():
        setattr(row, name, value)


async def publish_session(session: AsyncSession, clock: Clock, runtime: BookingRuntime, principal: Principal,
                          data: SessionCreate) -> tuple[SessionRead, bool]:
    """Create a session, or update it when the hospital sends the same external id again."""
    organization_id = await organization_for(session, principal, data.organization_id)
    await _check_refs(session, organization_id, data.department_id, data.practitioner_id)
    quotas = _quota_values(data.quotas, data.capacity)
    rules = await rules_for(session, organization_id)
    existing = await schedule_repository.session_by_external_id(session, organization_id, data.external_id)
    runtime.availability.invalidate()
    if existing is None:
        row = await _create(session, clock, organization_id, rules, external_id=data.external_id,
                            department_id=data.department_id, practitioner_id=data.practitioner_id,
                            service_date=data.service_date, start_time=data.start_time, end_time=data.end_time,
                            capacity=data.capacity, fee_class=data.fee_class, quotas=quotas)
        return session_read(row), True
    starts_at = at_business_time(data.service_date, data.start_time)
    ends_at = at_business_time(data.service_date, data.end_time)
    moved = (existing.service_date, existing.starts_at, existing.ends_at, existing.department_id,
             existing.practitioner_id) != (data.service_date, starts_at, ends_at, data.department_id,
                                           data.practitioner_id)
    if moved and existing.booked > 0:
        raise Conflict("the session has bookings: suspend it and publish a new one instead of moving it",
                       code="session_has_bookings", field="external_id", value=data.external_id,
                       rule="booking.session_immutable")
    if moved:
        existing.service_date, existing.starts_at, existing.ends_at = data.service_date, starts_at, ends_at
        existing.department_id, existing.practitioner_id = data.department_id, data.practitioner_id
        existing.released_at = released_at(rules, data.service_date)
        existing.pickup_deadline = pickup_deadline(rules, starts_at)
    _resize(existing, data.capacity, quotas)
    existing.fee_class, existing.updated_at = data.fee_class, clock.now()
    await session.flush()
    return session_read(existing), False


async def get_session(session: AsyncSession, session_id: int) -> SessionRead:
    row = await repository.get_booking_session(session, session_id)
    if row is None:
        raise NotFound(f"no session {session_id}", code="session_not_found", field="session_id", value=session_id)
    return session_read(row)


async def create_template(session: AsyncSession, clock: Clock, principal: Principal,
                          data: TemplateCreate) -> TemplateRead:
    organization_id = await organization_for(session, principal, data.organization_id)
    await _check_refs(session, organization_id, data.department_id, data.practitioner_id)
    quotas = _quota_values(data.quotas, data.capacity)
    now = clock.now()
    row = SessionTemplate(organization_id=organization_id, department_id=data.department_id,
                          practitioner_id=data.practitioner_id, weekday=data.weekday, start_time=data.start_time,
                          end_time=data.end_time, capacity=data.capacity, fee_class=data.fee_class, is_active=True,
                          created_at=now, updated_at=now, **quotas)
    session.add(row)
    await session.flush()
    return TemplateRead.model_validate(row)


async def generate_sessions(session: AsyncSession, clock: Clock, runtime: BookingRuntime, principal: Principal,
                            data: GenerateRequest) -> GenerateResult:
    """Sessions for every active template of the hospital on each day of the range (existing ones kept)."""
    organization_id = await organization_for(session, principal, data.organization_id)
    templates = await schedule_repository.active_templates(session, organization_id)
    rules = await rules_for(session, organization_id)
    known = await schedule_repository.external_ids_between(session, organization_id, data.date_from, data.date_to)
    created = existing = 0
    day = data.date_from
    while day <= data.date_to:
        for template in templates:
            if template.weekday != day.isoweekday():
                continue
            external_id = f"tpl{template.id}-{day:%Y%m%d}"
            if external_id in known:
                existing += 1
                continue
            await _create(session, clock, organization_id, rules, external_id=external_id,
                          department_id=template.department_id, practitioner_id=template.practitioner_id,
                          service_date=day, start_time=template.start_time, end_time=template.end_time,
                          capacity=template.capacity, fee_class=template.fee_class,
                          quotas={f"quota_{c}": getattr(template, f"quota_{c}") for c in CHANNELS},
                          template_id=template.id)
            created += 1
        day += timedelta(days=1)
    runtime.availability.invalidate()
    return GenerateResult(created=created, existing=existing)


async def search(database: Database, clock: Clock, runtime: BookingRuntime, principal: Principal | None, *,
                 organization_id: int | None, department_id: int | None, practitioner_id: int | None,
                 date_from: date | None, date_to: date | None) -> list[AvailabilityRead]:
    """Sessions matching the filters, from a snapshot at most a second old (a hint; booking re-checks);
    `available` is what the booking rule lets the caller's channel take now (feed_availability.py)."""
    now = clock.now()
    today = business_date(now)
    first = date_from or today
    last = date_to or first + timedelta(days=7)
    if last < first or (last - first).days > MAX_SEARCH_DAYS:
        raise ValidationFailed(f"date_to must be on or after date_from and at most {MAX_SEARCH_DAYS} days later",
                               code="invalid_date_range", field="date_to", value=last.isoformat(),
                               rule="booking.search_range")
    if organization_id is None and department_id is None and practitioner_id is None:
        raise ValidationFailed("give organization_id, department_id or practitioner_id",
                               code="filter_required", field="organization_id", rule="booking.search_filter")

    async def load() -> list[dict[str, Any]]:
        async with database.read_connection() as connection:
            return await feed_repository.sessions_with_policies(
                connection, first, last, organization_id=organization_id, department_id=department_id,
                practitioner_id=practitioner_id, now=now)

    rows = await runtime.availability.get(
        ("search", organization_id, department_id, practitioner_id, first, last), load)
    channel = await feed_availability.asking_channel(database, runtime, principal)
    return [AvailabilityRead(
        id=r["id"], organization_id=r["organization_id"], department_id=r["department_id"],
        practitioner_id=r["practitioner_id"], service_date=r["service_date"], starts_at=r["starts_at"],
        ends_at=r["ends_at"], fee_class=r["fee_class"], capacity=r["capacity"],
        available=feed_availability.available(r, channel, now), status=r["status"],
        released=r["released_at"] <= now) for r in rows]


async def get_policy(session: AsyncSession, organization_id: int) -> PolicyRead:
    if await session.get(Organization, organization_id) is None:
        raise NotFound(f"no organization {organization_id}", code="organization_not_found",
                       field="organization_id", value=organization_id)
    rules = await rules_for(session, organization_id)
    return PolicyRead(organization_id=organization_id, **rules.as_dict())


async def _store_policy(session: AsyncSession, clock: Clock, organization_id: int, rules: ReleaseRules) -> ReleaseRules:
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
    for session_id, service_date, starts_at in await repository.unreleased_sessions(session, organization_id, now):
        await repository.set_release(session, session_id, released_at(rules, service_date),
                                     pickup_deadline(rules, starts_at), now)
    return rules


async def put_policy(session: AsyncSession, clock: Clock, runtime: BookingRuntime, principal: Principal,
                     organization_id: int, data: PolicyUpdate) -> PolicyRead:
    organization_id = await organization_for(session, principal, organization_id)
    rules = await _store_policy(session, clock, organization_id, ReleaseRules(**data.model_dump()))
    runtime.availability.invalidate()
    return PolicyRead(organization_id=organization_id, **rules.as_dict())


# --- What a channel may book now (the resident pages ask it); added at the end as its own use case ----------


@dataclass(frozen=True)
class ChannelAnswer:
    """The booking rule's answer for one session, one channel, one moment: slots it may take, or why not."""

    left: int
    refusal: DomainError | None


async def channel_answers(session: AsyncSession, clock: Clock, session_ids: Sequence[int],
                          channel: str) -> dict[int, ChannelAnswer]:
    """`slots.refusal` for `channel` now, on each session that exists, its lapsed holds counted free, as the feed
    and the search count them (what is shown free can be held); one read for them all."""
    now = clock.now()
    answers: dict[int, ChannelAnswer] = {}
    for row in await feed_repository.sessions_by_id(await session.connection(), session_ids, now):
        answers[row["id"]] = ChannelAnswer(*feed_free.decide(row, feed_free.rules_of(row), channel, now))
    return answers
