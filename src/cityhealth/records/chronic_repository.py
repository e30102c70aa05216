"""Every query of the chronic disease tables."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Integer, Table, cast, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.records.chronic_models import ChronicCall, ChronicFollowup, ChronicPatientMonth, ChronicRegistration
from cityhealth.records.family_models import FamilyContract
from cityhealth.records.family_repository import covers

_PATIENT_MONTHS: Table = ChronicPatientMonth.__table__  # type: ignore[assignment]


async def registration(session: AsyncSession, registration_id: int, *, lock: bool = False
                       ) -> ChronicRegistration | None:
    statement = select(ChronicRegistration).where(ChronicRegistration.id == registration_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def registration_of(session: AsyncSession, resident_id: int, program: str, *, lock: bool = False
                          ) -> ChronicRegistration | None:
    statement = select(ChronicRegistration).where(ChronicRegistration.resident_id == resident_id,
                                                  ChronicRegistration.program == program)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def followup_by_key(session: AsyncSession, source_key: str) -> ChronicFollowup | None:
    statement = select(ChronicFollowup).where(ChronicFollowup.source_key == source_key)
    return (await session.scalars(statement)).one_or_none()


async def followup_before(session: AsyncSession, registration_id: int, visit_date: date) -> ChronicFollowup | None:
    """The registration's latest follow-up before `visit_date` (the previous visit)."""
    statement = (select(ChronicFollowup)
                 .where(ChronicFollowup.registration_id == registration_id, ChronicFollowup.visit_date < visit_date)
                 .order_by(ChronicFollowup.visit_date.desc(), ChronicFollowup.id.desc()).limit(1))
    return (await session.scalars(statement)).one_or_none()


async def latest_visit(session: AsyncSession, registration_id: int) -> date | None:
    statement = select(func.max(ChronicFollowup.visit_date)).where(
        ChronicFollowup.registration_id == registration_id)
    found: date | None = await session.scalar(statement)
    return found


async def followups(session: AsyncSession, registration_id: int) -> list[ChronicFollowup]:
    statement = (select(ChronicFollowup).where(ChronicFollowup.registration_id == registration_id)
                 .order_by(ChronicFollowup.visit_date, ChronicFollowup.id))
    return list((await session.scalars(statement)).all())


async def due_list(session: AsyncSession, organization_id: int, until: date, *, team_id: int | None, on: date,
                   limit: int) -> list[ChronicRegistration]:
    """The centre's registrations due by `until`, earliest first, leaving out those removed from the list for
    the due date they are at (a `removed` call about that date) and those off the register."""
    removed = (select(ChronicCall.id)
               .where(ChronicCall.registration_id == ChronicRegistration.id,
                      ChronicCall.due_on == ChronicRegistration.next_due_on, ChronicCall.outcome == "removed")
               .exists())
    statement = select(ChronicRegistration).where(
        ChronicRegistration.organization_id == organization_id, ChronicRegistration.removed_on.is_(None),
        ChronicRegistration.next_due_on <= until, ~removed)
    if team_id is not None:
        contracted = (select(FamilyContract.id)
                      .where(FamilyContract.resident_id == ChronicRegistration.resident_id,
                             FamilyContract.team_id == team_id, covers(on))
                      .exists())
        statement = statement.where(contracted)
    statement = statement.order_by(ChronicRegistration.next_due_on, ChronicRegistration.id).limit(limit)
    return list((await session.scalars(statement)).all())


async def last_calls(session: AsyncSession, keys: Collection[tuple[int, date]]) -> dict[int, str]:
    """The latest call's outcome for each (registration, due date) that has one, by registration."""
    if not keys:
        return {}
    ids = {registration_id for registration_id, _ in keys}
    statement = (select(ChronicCall.registration_id, ChronicCall.due_on, ChronicCall.outcome)
                 .where(ChronicCall.registration_id.in_(ids)).order_by(ChronicCall.called_at, ChronicCall.id))
    wanted = set(keys)
    found: dict[int, str] = {}
    for registration_id, due_on, outcome in (await session.execute(statement)).all():
        if (registration_id, due_on) in wanted:
            found[registration_id] = outcome
    return found


async def call_about(session: AsyncSession, registration_id: int, due_on: date, outcome: str,
                     removal_reason: str | None) -> ChronicCall | None:
    """A call already recorded with this outcome about this due date (a retry)."""
    statement = select(ChronicCall).where(
        ChronicCall.registration_id == registration_id, ChronicCall.due_on == due_on,
        ChronicCall.outcome == outcome, ChronicCall.removal_reason.is_(None) if removal_reason is None
        else ChronicCall.removal_reason == removal_reason).limit(1)
    return (await session.scalars(statement)).one_or_none()


# --- The patient-month table ----------------------------------------------------------------------------


async def registrations_on_register(session: AsyncSession, month_end: date, *, after_id: int,
                                    limit: int) -> list[ChronicRegistration]:
    """Registrations entered by `month_end` and not removed by then, by id from `after_id`."""
    statement = (select(ChronicRegistration)
                 .where(ChronicRegistration.registered_on <= month_end, ChronicRegistration.id > after_id,
                        (ChronicRegistration.removed_on.is_(None)) | (ChronicRegistration.removed_on > month_end))
                 .order_by(ChronicRegistration.id).limit(limit))
    return list((await session.scalars(statement)).all())


async def followups_between(session: AsyncSession, registration_ids: Collection[int], first: date,
                            last: date) -> list[ChronicFollowup]:
    statement = (select(ChronicFollowup)
                 .where(ChronicFollowup.registration_id.in_(registration_ids),
                        ChronicFollowup.visit_date >= first, ChronicFollowup.visit_date <= last)
                 .order_by(ChronicFollowup.registration_id, ChronicFollowup.visit_date, ChronicFollowup.id))
    return list((await session.scalars(statement)).all())


async def clear_month(session: AsyncSession, month: int) -> None:
    await session.execute(delete(ChronicPatientMonth).where(ChronicPatientMonth.month == month))


async def insert_patient_months(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(_PATIENT_MONTHS), list(rows))


async def indicator_totals(session: AsyncSession, month: int, program: str, by: str
                           ) -> list[tuple[Any, int, int, int, int, int]]:
    """(area code or team id, managed, standard, controlled, HEARTS denominator, HEARTS controlled) per group."""
    key = ChronicPatientMonth.area_code if by == "area" else ChronicPatientMonth.team_id

    def total(column: Any) -> Any:
        return func.coalesce(func.sum(cast(column, Integer)), 0)

    statement = (select(key, func.count(), total(ChronicPatientMonth.is_standard),
                        total(ChronicPatientMonth.is_controlled), total(ChronicPatientMonth.hearts_eligible),
                        total(ChronicPatientMonth.hearts_controlled))
                 .where(ChronicPatientMonth.month == month, ChronicPatientMonth.program == program)
                 .group_by(key).order_by(key))
    if by == "team":
        statement = statement.where(ChronicPatientMonth.team_id.is_not(None))
    return [(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            for row in (await session.execute(statement)).all()]
