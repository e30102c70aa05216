"""All SQL of the imaging studies and their reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.imaging_models import ImagingReport, ImagingStudy

_STUDIES: Table = ImagingStudy.__table__  # type: ignore[assignment]
_REFRESHED = (
    "pacs",
    "accession_number",
    "modalities",
    "description",
    "study_date",
    "series_count",
    "image_count",
    "counted_at",
    "patient_id_hash",
    "patient_id_enc",
    "patient_name_enc",
    "updated_at",
)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert(_STUDIES) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(_STUDIES)


async def insert_study(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new study's id; None when its UID is known already (a concurrent insert waits for the first)."""
    statement = (
        _insert(session)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[_STUDIES.c.study_instance_uid])
        .returning(_STUDIES.c.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def upsert_study(session: AsyncSession, values: dict[str, Any]) -> int:
    """The study's id: inserted, or its PACS facts refreshed when the UID is already known (case kept)."""
    insert = (
        postgresql.insert(_STUDIES) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(_STUDIES)
    ).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=[_STUDIES.c.study_instance_uid], set_={name: insert.excluded[name] for name in _REFRESHED}
    ).returning(_STUDIES.c.id)
    return int((await session.execute(statement)).scalar_one())


async def study(session: AsyncSession, study_id: int) -> ImagingStudy | None:
    return await session.get(ImagingStudy, study_id, populate_existing=True)


async def study_by_uid(session: AsyncSession, uid: str, *, for_update: bool = False) -> ImagingStudy | None:
    statement = (
        select(ImagingStudy).where(ImagingStudy.study_instance_uid == uid).execution_options(populate_existing=True)
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def report_of(session: AsyncSession, study_id: int, *, for_update: bool = False) -> ImagingReport | None:
    statement = select(ImagingReport).where(ImagingReport.study_id == study_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def insert_report(session: AsyncSession, values: dict[str, Any]) -> None:
    """A study's first report, unless another writer's landed first (then theirs is the one to update)."""
    table: Table = ImagingReport.__table__  # type: ignore[assignment]
    insert = postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table)
    await session.execute(insert.values(**values).on_conflict_do_nothing(index_elements=[table.c.study_id]))
