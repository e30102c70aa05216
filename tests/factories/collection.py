"""Collection test factories: example records (from the package) and organizations written directly."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.collection.examples import ALL_FORMS, REALTIME_FORMS, compact, day, make_record
from cityhealth.db.engine import Database
from cityhealth.registry.models import Area, Organization

__all__ = ["ALL_FORMS", "REALTIME_FORMS", "add_organization", "compact", "day", "make_record"]


async def add_organization(
    database: Database,
    clock: Clock,
    code: str,
    *,
    kind: str = "hospital",
    name: str | None = None,
    area_code: str | None = "320106",
) -> Organization:
    """An organization (and its area), written straight to the registry tables."""
    now = clock.now()
    async with database.transaction() as session:
        await _ensure_area(session, now, area_code)
        org = Organization(
            code=code,
            name=name or f"测试医院{code}",
            kind=kind,
            area_code=area_code,
            active_from=date(2020, 1, 1),
            created_at=now,
            updated_at=now,
        )
        session.add(org)
        await session.flush()
        session.expunge(org)
    return org


_AREA_NAMES = {"320100": "南京市", "320106": "鼓楼区", "320115": "江宁区", "320102": "玄武区", "3201JB": "江北新区"}


async def _ensure_area(session: AsyncSession, now: datetime, code: str | None) -> None:
    if code is None or await session.get(Area, code) is not None:
        return
    if code != "320100":
        await _ensure_area(session, now, "320100")
    level = "city" if code == "320100" else ("reporting_unit" if code == "3201JB" else "district")
    session.add(
        Area(
            code=code,
            name=_AREA_NAMES.get(code, code),
            level=level,
            parent_code=None if code == "320100" else "320100",
            is_active=True,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
