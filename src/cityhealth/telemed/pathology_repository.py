"""The remote pathology queries: people, a case's pathology detail, meetings with their participants and cases,
lectures, and the bulletin's counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Table, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.models import Case, Member, Report
from cityhealth.telemed.pathology_models import (
    MeetingCase,
    MeetingParticipant,
    PathologyCase,
    PathologyLecture,
    PathologyMeeting,
    PathologyPerson,
)

NETWORK = "pathology"
_PEOPLE: Table = PathologyPerson.__table__  # type: ignore[assignment]
_CASES: Table = PathologyCase.__table__  # type: ignore[assignment]
_MEETINGS: Table = PathologyMeeting.__table__  # type: ignore[assignment]
_LECTURES: Table = PathologyLecture.__table__  # type: ignore[assignment]
Event = PathologyMeeting | PathologyLecture
E = TypeVar("E", PathologyMeeting, PathologyLecture)


def _insert(session: AsyncSession, table: Table) -> Any:
    return postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)


def _member_active_on(on: date) -> Any:
    return and_(Member.joined_on <= on, or_(Member.left_on.is_(None), Member.left_on > on))


async def active_membership(session: AsyncSession, organization_id: int, on: date) -> Member | None:
    """The organization's membership of the pathology network on a day (an organization has one at a time)."""
    statement = select(Member).where(
        Member.network_code == NETWORK, Member.organization_id == organization_id, _member_active_on(on)
    )
    return (await session.scalars(statement.limit(1))).one_or_none()


async def active_memberships(session: AsyncSession, organization_ids: Collection[int], on: date) -> dict[int, Member]:
    if not organization_ids:
        return {}
    statement = select(Member).where(
        Member.network_code == NETWORK, Member.organization_id.in_(organization_ids), _member_active_on(on)
    )
    return {m.organization_id: m for m in (await session.scalars(statement)).all()}


# --- people -------------------------------------------------------------------------------------------------


async def insert_person(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new person's id; None when the organization registered this key already."""
    statement = (
        _insert(session, _PEOPLE)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["organization_id", "key"])
        .returning(_PEOPLE.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def person_by_key(session: AsyncSession, organization_id: int, key: str) -> PathologyPerson | None:
    statement = select(PathologyPerson).where(
        PathologyPerson.organization_id == organization_id, PathologyPerson.key == key
    )
    return (await session.scalars(statement)).one_or_none()


async def person(session: AsyncSession, person_id: int) -> PathologyPerson | None:
    statement = select(PathologyPerson).where(PathologyPerson.id == person_id)
    return (await session.scalars(statement.execution_options(populate_existing=True))).one_or_none()


async def people_by_id(session: AsyncSession, ids: Collection[int]) -> dict[int, PathologyPerson]:
    if not ids:
        return {}
    statement = select(PathologyPerson).where(PathologyPerson.id.in_(ids))
    return {p.id: p for p in (await session.scalars(statement)).all()}


async def people(
    session: AsyncSession, *, kind: str | None, organization_id: int | None, active: bool | None, limit: int
) -> list[PathologyPerson]:
    statement = select(PathologyPerson)
    if kind is not None:
        statement = statement.where(PathologyPerson.kind == kind)
    if organization_id is not None:
        statement = statement.where(PathologyPerson.organization_id == organization_id)
    if active is not None:
        gone = PathologyPerson.deactivated_at.is_not(None)
        statement = statement.where(~gone if active else gone)
    return list((await session.scalars(statement.order_by(PathologyPerson.id).limit(limit))).all())


async def deactivate_person(session: AsyncSession, person_id: int, values: dict[str, Any]) -> None:
    statement = update(PathologyPerson).where(
        PathologyPerson.id == person_id, PathologyPerson.deactivated_at.is_(None)
    )
    await session.execute(statement.values(**values))


# --- cases --------------------------------------------------------------------------------------------------


async def insert_detail(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Whether the case's pathology detail was written now (False: it was there already)."""
    statement = (
        _insert(session, _CASES)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["case_id"])
        .returning(_CASES.c.case_id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def detail(session: AsyncSession, case_id: int) -> PathologyCase | None:
    return await session.get(PathologyCase, case_id)


# --- meetings and lectures ----------------------------------------------------------------------------------


async def insert_event(session: AsyncSession, model: type[Event], values: dict[str, Any]) -> int | None:
    """The new meeting's or lecture's id; None when the organizer used this request key already."""
    table: Table = model.__table__  # type: ignore[assignment]
    statement = (
        _insert(session, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["organizer_organization_id", "request_key"])
        .returning(table.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def event_by_key(
    session: AsyncSession, model: type[E], organization_id: int, request_key: str
) -> E | None:
    statement = select(model).where(
        model.organizer_organization_id == organization_id, model.request_key == request_key
    )
    return (await session.scalars(statement)).one_or_none()


async def event(session: AsyncSession, model: type[E], event_id: int, *, lock: bool = False) -> E | None:
    """A meeting or lecture; locked, its steps are taken one after another."""
    statement = select(model).where(model.id == event_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement.execution_options(populate_existing=True))).one_or_none()


async def set_event(session: AsyncSession, model: type[Event], event_id: int, values: dict[str, Any]) -> None:
    await session.execute(update(model).where(model.id == event_id).values(**values))


async def add_meeting_links(
    session: AsyncSession, meeting_id: int, person_ids: Sequence[int], case_ids: Sequence[int]
) -> None:
    session.add_all([MeetingParticipant(meeting_id=meeting_id, person_id=p) for p in person_ids])
    session.add_all([MeetingCase(meeting_id=meeting_id, case_id=c) for c in case_ids])
    await session.flush()


async def meetings_of(
    session: AsyncSession, organization_id: int, status: str | None, before_id: int | None, limit: int
) -> list[PathologyMeeting]:
    """The meetings an organization organizes or sends a participant to, the newest first."""
    taking_part = (
        select(MeetingParticipant.meeting_id)
        .join(PathologyPerson, PathologyPerson.id == MeetingParticipant.person_id)
        .where(PathologyPerson.organization_id == organization_id)
    )
    statement = select(PathologyMeeting).where(
        or_(PathologyMeeting.organizer_organization_id == organization_id, PathologyMeeting.id.in_(taking_part))
    )
    if status is not None:
        statement = statement.where(PathologyMeeting.status == status)
    if before_id is not None:
        statement = statement.where(PathologyMeeting.id < before_id)
    return list((await session.scalars(statement.order_by(PathologyMeeting.id.desc()).limit(limit))).all())


async def lectures(
    session: AsyncSession, status: str | None, before_id: int | None, limit: int
) -> list[PathologyLecture]:
    """The network's lectures, the newest first."""
    statement = select(PathologyLecture)
    if status is not None:
        statement = statement.where(PathologyLecture.status == status)
    if before_id is not None:
        statement = statement.where(PathologyLecture.id < before_id)
    return list((await session.scalars(statement.order_by(PathologyLecture.id.desc()).limit(limit))).all())


async def meeting_participants(session: AsyncSession, meeting_id: int) -> list[PathologyPerson]:
    statement = (
        select(PathologyPerson)
        .join(MeetingParticipant, MeetingParticipant.person_id == PathologyPerson.id)
        .where(MeetingParticipant.meeting_id == meeting_id)
        .order_by(PathologyPerson.id)
    )
    return list((await session.scalars(statement)).all())


async def meeting_cases(session: AsyncSession, meeting_id: int) -> list[Case]:
    statement = (
        select(Case)
        .join(MeetingCase, MeetingCase.case_id == Case.id)
        .where(MeetingCase.meeting_id == meeting_id)
        .order_by(Case.id)
    )
    return list((await session.scalars(statement)).all())


# --- the bulletin's counts ----------------------------------------------------------------------------------


def _city_members(city_code: str, on: date) -> Any:
    return and_(Member.network_code == NETWORK, Member.city_code == city_code, _member_active_on(on))


async def count_members(session: AsyncSession, city_code: str, on: date) -> int:
    return int(await session.scalar(select(func.count()).select_from(Member).where(_city_members(city_code, on))) or 0)


async def count_people(session: AsyncSession, kind: str, city_code: str, until: datetime, on: date) -> int:
    """People of a kind registered by `until`, not deactivated by it, whose organization is then a member."""
    member_then = exists().where(
        Member.organization_id == PathologyPerson.organization_id, _city_members(city_code, on)
    )
    statement = (
        select(func.count())
        .select_from(PathologyPerson)
        .where(
            PathologyPerson.kind == kind,
            PathologyPerson.registered_at <= until,
            or_(PathologyPerson.deactivated_at.is_(None), PathologyPerson.deactivated_at > until),
            member_then,
        )
    )
    return int(await session.scalar(statement) or 0)


async def count_cases(session: AsyncSession, city_code: str, until: datetime) -> tuple[int, int]:
    """(pathology cases submitted by `until` by the city's members, reports on them signed by `until`)."""
    city_cases = (
        select(Case.id)
        .join(Member, Member.id == Case.requester_member_id)
        .where(Case.network_code == NETWORK, Case.submitted_at <= until, Member.city_code == city_code)
    )
    cases = int(await session.scalar(select(func.count()).select_from(city_cases.subquery())) or 0)
    reports = await session.scalar(
        select(func.count())
        .select_from(Report)
        .where(Report.case_id.in_(city_cases), Report.signed_at.is_not(None), Report.signed_at <= until)
    )
    return cases, int(reports or 0)


async def count_held(session: AsyncSession, model: type[Event], city_code: str, until: datetime) -> int:
    statement = (
        select(func.count())
        .select_from(model)
        .where(model.city_code == city_code, model.status == "held", model.held_at <= until)
    )
    return int(await session.scalar(statement) or 0)
