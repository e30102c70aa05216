"""Every query of the family doctor tables."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.records.family_models import (
    AreaPopulation,
    FamilyContract,
    FamilyServicePackage,
    FamilyTeam,
    FamilyTeamMember,
)


def covers(on: date) -> ColumnElement[bool]:
    """The contract covers the day `on`: started, and neither past its year nor ended early."""
    end = func.coalesce(FamilyContract.ended_on, FamilyContract.ends_on)
    return (FamilyContract.starts_on <= on) & (end > on)


async def team(session: AsyncSession, team_id: int) -> FamilyTeam | None:
    return await session.get(FamilyTeam, team_id)


async def team_by_code(session: AsyncSession, organization_id: int, code: str) -> FamilyTeam | None:
    statement = select(FamilyTeam).where(FamilyTeam.organization_id == organization_id, FamilyTeam.code == code)
    return (await session.scalars(statement)).one_or_none()


async def teams_of(session: AsyncSession, organization_id: int) -> list[FamilyTeam]:
    statement = select(FamilyTeam).where(FamilyTeam.organization_id == organization_id).order_by(FamilyTeam.code)
    return list((await session.scalars(statement)).all())


async def members(session: AsyncSession, team_ids: Collection[int]) -> list[FamilyTeamMember]:
    statement = (select(FamilyTeamMember).where(FamilyTeamMember.team_id.in_(team_ids))
                 .order_by(FamilyTeamMember.team_id, FamilyTeamMember.practitioner_id))
    return list((await session.scalars(statement)).all())


async def replace_members(session: AsyncSession, team_id: int, rows: list[FamilyTeamMember]) -> None:
    await session.execute(delete(FamilyTeamMember).where(FamilyTeamMember.team_id == team_id))
    session.add_all(rows)
    await session.flush()


async def package(session: AsyncSession, package_id: int) -> FamilyServicePackage | None:
    return await session.get(FamilyServicePackage, package_id)


async def package_by_code(session: AsyncSession, code: str) -> FamilyServicePackage | None:
    statement = select(FamilyServicePackage).where(FamilyServicePackage.code == code)
    return (await session.scalars(statement)).one_or_none()


async def packages(session: AsyncSession) -> list[FamilyServicePackage]:
    return list((await session.scalars(select(FamilyServicePackage).order_by(FamilyServicePackage.code))).all())


async def contract(session: AsyncSession, contract_id: int, *, lock: bool = False) -> FamilyContract | None:
    statement = select(FamilyContract).where(FamilyContract.id == contract_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).one_or_none()


async def successor(session: AsyncSession, contract_id: int) -> FamilyContract | None:
    statement = select(FamilyContract).where(FamilyContract.previous_id == contract_id).order_by(FamilyContract.id)
    return (await session.scalars(statement.limit(1))).one_or_none()


async def active_contracts(session: AsyncSession, resident_ids: Collection[int]) -> dict[int, FamilyContract]:
    """The current contract of each of these residents that has one, locked for the change to come."""
    statement = (select(FamilyContract).where(FamilyContract.resident_id.in_(resident_ids),
                                              FamilyContract.status == "active")
                 .order_by(FamilyContract.resident_id).with_for_update())
    return {row.resident_id: row for row in (await session.scalars(statement)).all()}


async def add_contract(session: AsyncSession, row: FamilyContract) -> FamilyContract:
    session.add(row)
    await session.flush()
    return row


async def panel(session: AsyncSession, team_id: int, on: date, *, after_id: int, limit: int) -> list[FamilyContract]:
    statement = (select(FamilyContract).where(FamilyContract.team_id == team_id, covers(on),
                                              FamilyContract.id > after_id)
                 .order_by(FamilyContract.id).limit(limit))
    return list((await session.scalars(statement)).all())


async def contracts_of_resident(session: AsyncSession, resident_id: int) -> list[FamilyContract]:
    statement = select(FamilyContract).where(FamilyContract.resident_id == resident_id).order_by(FamilyContract.id)
    return list((await session.scalars(statement)).all())


async def has_contract_with_practitioner(session: AsyncSession, practitioner_id: int, resident_id: int,
                                         on: date) -> bool:
    statement = (select(FamilyContract.id)
                 .join(FamilyTeamMember, FamilyTeamMember.team_id == FamilyContract.team_id)
                 .where(FamilyTeamMember.practitioner_id == practitioner_id,
                        FamilyContract.resident_id == resident_id, covers(on)).limit(1))
    return (await session.scalar(statement)) is not None


async def has_contract_with_organization(session: AsyncSession, organization_id: int, resident_id: int,
                                         on: date) -> bool:
    statement = (select(FamilyContract.id)
                 .join(FamilyTeam, FamilyTeam.id == FamilyContract.team_id)
                 .where(FamilyTeam.organization_id == organization_id,
                        FamilyContract.resident_id == resident_id, covers(on)).limit(1))
    return (await session.scalar(statement)) is not None


async def teams_on(session: AsyncSession, resident_ids: Collection[int], on: date) -> dict[int, int]:
    """The team of each resident's contract covering `on`, for those who have one."""
    statement = select(FamilyContract.resident_id, FamilyContract.team_id).where(
        FamilyContract.resident_id.in_(resident_ids), covers(on))
    return {resident_id: team_id for resident_id, team_id in (await session.execute(statement)).all()}


async def signed_residents(session: AsyncSession, area_codes: Collection[str], on: date) -> int:
    statement = select(func.count(func.distinct(FamilyContract.resident_id))).where(
        FamilyContract.area_code.in_(area_codes), covers(on))
    return int(await session.scalar(statement) or 0)


async def population(session: AsyncSession, area_code: str, year: int) -> AreaPopulation | None:
    """The area's population figure of `year`, else of the latest earlier year."""
    statement = (select(AreaPopulation).where(AreaPopulation.area_code == area_code, AreaPopulation.year <= year)
                 .order_by(AreaPopulation.year.desc()).limit(1))
    return (await session.scalars(statement)).one_or_none()


async def population_row(session: AsyncSession, area_code: str, year: int) -> AreaPopulation | None:
    return await session.get(AreaPopulation, (area_code, year))


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


