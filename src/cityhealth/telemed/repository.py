"""The remote diagnosis queries: networks and targets, members and designations, cases and their events,
reports, consultations, the month's volumes."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, and_, delete, func, or_, select, update
from sqlalchemy import case as when
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.counters import add_counts
from cityhealth.telemed.models import (
    Case,
    CaseEvent,
    Consultation,
    ConsultationParticipant,
    Designation,
    Member,
    MonthVolume,
    Network,
    Report,
    TurnaroundTarget,
)

_CASES: Table = Case.__table__  # type: ignore[assignment]
_MEMBERS: Table = Member.__table__  # type: ignore[assignment]
_CONSULTATIONS: Table = Consultation.__table__  # type: ignore[assignment]
_VOLUMES: Table = MonthVolume.__table__  # type: ignore[assignment]
READING_ROLES = ("reading_centre", "both")
REQUESTING_ROLES = ("requester", "both")


def _insert(session: AsyncSession, table: Table) -> Any:
    return postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)


def _active_on(on: date) -> Any:
    return and_(Member.joined_on <= on, or_(Member.left_on.is_(None), Member.left_on > on))


# --- networks -----------------------------------------------------------------------------------------------


async def networks(session: AsyncSession) -> list[Network]:
    return list((await session.scalars(select(Network).order_by(Network.code))).all())


async def network(session: AsyncSession, code: str) -> Network | None:
    return await session.get(Network, code)


async def targets(session: AsyncSession) -> dict[str, dict[str, int]]:
    """Each network's turnaround minutes by priority."""
    found: dict[str, dict[str, int]] = {}
    for row in (await session.scalars(select(TurnaroundTarget))).all():
        found.setdefault(row.network_code, {})[row.priority] = row.minutes
    return found


async def member_counts(session: AsyncSession, on: date) -> dict[str, tuple[int, int]]:
    """Per network: (active members, active reading centres) on a day."""
    reading = func.sum(when((Member.role.in_(READING_ROLES), 1), else_=0))
    statement = select(Member.network_code, func.count(), reading).where(_active_on(on)).group_by(Member.network_code)
    return {code: (int(count), int(centres or 0)) for code, count, centres in await session.execute(statement)}


# --- members ------------------------------------------------------------------------------------------------


async def member(session: AsyncSession, member_id: int) -> Member | None:
    return await session.get(Member, member_id)


async def members_by_id(session: AsyncSession, ids: Collection[int]) -> dict[int, Member]:
    if not ids:
        return {}
    return {m.id: m for m in (await session.scalars(select(Member).where(Member.id.in_(ids)))).all()}


async def insert_member(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new member's id; None when this organization joined this network on this day already."""
    statement = (
        _insert(session, _MEMBERS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["network_code", "organization_id", "joined_on"])
        .returning(_MEMBERS.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def member_by_key(
    session: AsyncSession, network_code: str, organization_id: int, joined_on: date
) -> Member | None:
    statement = select(Member).where(
        Member.network_code == network_code, Member.organization_id == organization_id, Member.joined_on == joined_on
    )
    return (await session.scalars(statement)).one_or_none()


async def memberships_of(session: AsyncSession, network_code: str, organization_id: int) -> list[Member]:
    statement = (
        select(Member)
        .where(Member.network_code == network_code, Member.organization_id == organization_id)
        .order_by(Member.joined_on)
    )
    return list((await session.scalars(statement)).all())


async def active_member(
    session: AsyncSession, network_code: str, organization_id: int, on: date, roles: Sequence[str]
) -> Member | None:
    """The organization's membership of the network on a day, in one of `roles`."""
    statement = (
        select(Member)
        .where(
            Member.network_code == network_code,
            Member.organization_id == organization_id,
            Member.role.in_(roles),
            _active_on(on),
        )
        .limit(1)
    )
    return (await session.scalars(statement)).one_or_none()


async def members(session: AsyncSession, network_code: str, *, on: date | None) -> list[Member]:
    """A network's members (those active on `on`, or every membership ever), oldest first."""
    statement = select(Member).where(Member.network_code == network_code).order_by(Member.joined_on, Member.id)
    if on is not None:
        statement = statement.where(_active_on(on))
    return list((await session.scalars(statement)).all())


async def set_left(session: AsyncSession, member_id: int, left_on: date) -> None:
    await session.execute(update(Member).where(Member.id == member_id).values(left_on=left_on))


async def designations_of(session: AsyncSession, member_ids: Collection[int]) -> dict[int, list[int]]:
    """Each requester's designated centres, best first."""
    found: dict[int, list[int]] = {member_id: [] for member_id in member_ids}
    if member_ids:
        statement = (
            select(Designation.requester_member_id, Designation.centre_member_id)
            .where(Designation.requester_member_id.in_(member_ids))
            .order_by(Designation.requester_member_id, Designation.rank)
        )
        for requester, centre in await session.execute(statement):
            found[requester].append(centre)
    return found


async def replace_designations(
    session: AsyncSession, requester_id: int, centre_ids: Sequence[int], now: datetime
) -> None:
    await session.execute(delete(Designation).where(Designation.requester_member_id == requester_id))
    session.add_all(
        [
            Designation(requester_member_id=requester_id, centre_member_id=centre, rank=rank, created_at=now)
            for rank, centre in enumerate(centre_ids, start=1)
        ]
    )
    await session.flush()


async def reading_centres(session: AsyncSession, network_code: str, on: date) -> list[Member]:
    statement = (
        select(Member)
        .where(Member.network_code == network_code, Member.role.in_(READING_ROLES), _active_on(on))
        .order_by(Member.id)
    )
    return list((await session.scalars(statement)).all())


async def open_loads(session: AsyncSession, member_ids: Collection[int], statuses: Sequence[str]) -> dict[int, int]:
    """Each centre's cases still open (routed to it and not finished)."""
    if not member_ids:
        return {}
    statement = (
        select(Case.centre_member_id, func.count())
        .where(Case.centre_member_id.in_(member_ids), Case.status.in_(statuses))
        .group_by(Case.centre_member_id)
    )
    return {int(member_id or 0): int(count) for member_id, count in await session.execute(statement)}


# --- cases --------------------------------------------------------------------------------------------------


async def insert_case(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new case's id; None when the requester submitted a case with this id to this network already."""
    statement = (
        _insert(session, _CASES)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["requester_organization_id", "network_code", "external_id"])
        .returning(_CASES.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def case_by_key(session: AsyncSession, organization_id: int, network_code: str, external_id: str) -> Case | None:
    statement = select(Case).where(
        Case.requester_organization_id == organization_id,
        Case.network_code == network_code,
        Case.external_id == external_id,
    )
    return (await session.scalars(statement)).one_or_none()


async def case(session: AsyncSession, case_id: int, *, lock: bool = False) -> Case | None:
    """A case; locked, each step of it waits for the one before (their events' sequence is one line)."""
    statement = select(Case).where(Case.id == case_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement.execution_options(populate_existing=True))).one_or_none()


async def set_case(session: AsyncSession, case_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(Case).where(Case.id == case_id).values(**values))


async def claim(
    session: AsyncSession, case_id: int, centre_organization_id: int, holder: str, values: dict[str, Any]
) -> bool:
    """Hold the case for `holder` if it is accepted, unheld and routed to the centre: one conditional update,
    so of two doctors claiming at once exactly one matches the row (the other's update finds it held)."""
    statement = (
        update(Case)
        .where(
            Case.id == case_id,
            Case.status == "accepted",
            Case.holder.is_(None),
            Case.centre_organization_id == centre_organization_id,
        )
        .values(holder=holder, **values)
    )
    result: Any = await session.execute(statement)
    return int(result.rowcount) == 1


async def events(session: AsyncSession, case_id: int) -> list[CaseEvent]:
    statement = select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    return list((await session.scalars(statement)).all())


async def event_by_key(session: AsyncSession, case_id: int, request_key: str) -> CaseEvent | None:
    statement = select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.request_key == request_key)
    return (await session.scalars(statement)).one_or_none()


async def append_event(session: AsyncSession, values: dict[str, Any]) -> None:
    """The case's next event (the caller holds the case's lock, or has just made the case)."""
    last = await session.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == values["case_id"]))
    session.add(CaseEvent(seq=(last or 0) + 1, **values))
    await session.flush()


async def rejected_by(session: AsyncSession, case_id: int) -> set[int]:
    """The centres that rejected the case."""
    statement = select(CaseEvent.centre_member_id).where(CaseEvent.case_id == case_id, CaseEvent.kind == "rejected")
    return {member_id for member_id in (await session.scalars(statement)).all() if member_id is not None}


def _page(statement: Select[Any], before_id: int | None, limit: int) -> Select[Any]:
    if before_id is not None:
        statement = statement.where(Case.id < before_id)
    return statement.order_by(Case.id.desc()).limit(limit)


async def centre_queue(
    session: AsyncSession, centre_organization_id: int, statuses: Sequence[str], limit: int
) -> list[Case]:
    """The cases routed to the centre in these statuses, the soonest due first."""
    statement = (
        select(Case)
        .where(Case.centre_organization_id == centre_organization_id, Case.status.in_(statuses))
        .order_by(Case.due_at, Case.id)
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def requester_cases(
    session: AsyncSession, organization_id: int, status: str | None, before_id: int | None, limit: int
) -> list[Case]:
    statement = select(Case).where(Case.requester_organization_id == organization_id)
    if status is not None:
        statement = statement.where(Case.status == status)
    return list((await session.scalars(_page(statement, before_id, limit))).all())


async def overdue(
    session: AsyncSession,
    now: datetime,
    statuses: Sequence[str],
    *,
    network_code: str | None,
    centre_organization_id: int | None,
    limit: int,
) -> list[Case]:
    """Open cases past their due time, the longest overdue first."""
    statement = select(Case).where(Case.status.in_(statuses), Case.due_at < now)
    if network_code is not None:
        statement = statement.where(Case.network_code == network_code)
    if centre_organization_id is not None:
        statement = statement.where(Case.centre_organization_id == centre_organization_id)
    return list((await session.scalars(statement.order_by(Case.due_at, Case.id).limit(limit))).all())


# --- reports ------------------------------------------------------------------------------------------------


async def report(session: AsyncSession, case_id: int) -> Report | None:
    return (await session.scalars(select(Report).where(Report.case_id == case_id))).one_or_none()


async def save_report(session: AsyncSession, case_id: int, values: dict[str, Any]) -> None:
    held = await report(session, case_id)
    if held is None:
        session.add(Report(case_id=case_id, **values))
    else:
        for name, value in values.items():
            setattr(held, name, value)
    await session.flush()


# --- consultations ------------------------------------------------------------------------------------------


async def insert_consultation(session: AsyncSession, values: dict[str, Any]) -> int | None:
    statement = (
        _insert(session, _CONSULTATIONS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["requester_organization_id", "request_key"])
        .returning(_CONSULTATIONS.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def consultation_by_key(session: AsyncSession, organization_id: int, request_key: str) -> Consultation | None:
    statement = select(Consultation).where(
        Consultation.requester_organization_id == organization_id, Consultation.request_key == request_key
    )
    return (await session.scalars(statement)).one_or_none()


async def consultation(session: AsyncSession, consultation_id: int, *, lock: bool = False) -> Consultation | None:
    statement = select(Consultation).where(Consultation.id == consultation_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement.execution_options(populate_existing=True))).one_or_none()


async def add_participants(
    session: AsyncSession, consultation_id: int, participants: Sequence[tuple[int, str | None]]
) -> None:
    session.add_all(
        [
            ConsultationParticipant(consultation_id=consultation_id, member_id=member_id, doctor_name=doctor)
            for member_id, doctor in participants
        ]
    )
    await session.flush()


async def participants(session: AsyncSession, consultation_id: int) -> list[ConsultationParticipant]:
    statement = (
        select(ConsultationParticipant)
        .where(ConsultationParticipant.consultation_id == consultation_id)
        .order_by(ConsultationParticipant.member_id)
    )
    return list((await session.scalars(statement)).all())


async def set_consultation(session: AsyncSession, consultation_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(Consultation).where(Consultation.id == consultation_id).values(**values))


# --- the month's volumes ------------------------------------------------------------------------------------


_VOLUME_COUNTS = (
    "cases_submitted", "reports_signed", "consultations", "reports_uploaded", "specimens_routed", "images"
)


async def add_volume(
    session: AsyncSession, network_code: str, month: date, organization_id: int, **counts: int
) -> None:
    """Add to one organization's month in a network (the counts not named add nothing)."""
    await add_volumes(session, network_code, {(month, organization_id): counts})


async def add_volumes(
    session: AsyncSession, network_code: str, counts: Mapping[tuple[date, int], Mapping[str, int]]
) -> None:
    """Add to several organizations' months in a network at once, one upsert (each key's counts not named add
    nothing)."""
    rows = [
        {"network_code": network_code, "month": month, "organization_id": organization_id}
        | {name: 0 for name in _VOLUME_COUNTS}
        | dict(added)
        for (month, organization_id), added in counts.items()
    ]
    await add_counts(session, _VOLUMES, ("network_code", "month", "organization_id"), rows)


async def month_volumes(session: AsyncSession, network_code: str, month: date) -> list[MonthVolume]:
    statement = (
        select(MonthVolume)
        .where(MonthVolume.network_code == network_code, MonthVolume.month == month)
        .order_by(MonthVolume.cases_submitted.desc(), MonthVolume.organization_id)
    )
    return list((await session.scalars(statement)).all())
