"""The telemed statistics' queries: a month's volume rows, the consultations up to a month, opening balances."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.models import MonthVolume
from cityhealth.telemed.statistics_models import OpeningBalance

VOLUME_COUNTS = ("cases_submitted", "reports_signed", "consultations", "reports_uploaded", "specimens_routed", "images")


async def month_rows(session: AsyncSession, month: date) -> dict[str, list[dict[str, Any]]]:
    """Each network's volume rows of the month (one per organization), as plain dicts, by organization id."""
    statement = select(MonthVolume).where(MonthVolume.month == month).order_by(
        MonthVolume.network_code, MonthVolume.organization_id
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in (await session.scalars(statement)).all():
        found.setdefault(row.network_code, []).append(
            {"organization_id": row.organization_id} | {name: int(getattr(row, name)) for name in VOLUME_COUNTS}
        )
    return found


async def consultations_until(session: AsyncSession, network_code: str, month: date) -> int:
    """The network's consultations scheduled in every month up to and including `month`."""
    statement = select(func.sum(MonthVolume.consultations)).where(
        MonthVolume.network_code == network_code, MonthVolume.month <= month
    )
    return int(await session.scalar(statement) or 0)


async def opening_until(session: AsyncSession, network_code: str, last_day: date) -> int:
    statement = select(func.sum(OpeningBalance.consultations)).where(
        OpeningBalance.network_code == network_code, OpeningBalance.as_of <= last_day
    )
    return int(await session.scalar(statement) or 0)


async def opening_balance(session: AsyncSession, network_code: str, as_of: date) -> OpeningBalance | None:
    return await session.get(OpeningBalance, (network_code, as_of), populate_existing=True)


async def insert_opening_balance(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the balance unless one for its network and day is there (a concurrent one waits for the first)."""
    table: Table = OpeningBalance.__table__  # type: ignore[assignment]
    insert = postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)
    await session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["network_code", "as_of"]))


async def opening_balances(session: AsyncSession, network_codes: Sequence[str]) -> list[OpeningBalance]:
    statement = (
        select(OpeningBalance)
        .where(OpeningBalance.network_code.in_(network_codes))
        .order_by(OpeningBalance.network_code, OpeningBalance.as_of)
    )
    return list((await session.scalars(statement)).all())
