"""All SQL of the ECG tracings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.ecg_models import EcgTracing

_TRACINGS: Table = EcgTracing.__table__  # type: ignore[assignment]


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    return postgresql.insert(_TRACINGS) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(_TRACINGS)


async def insert_tracing(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new tracing's id, or None when a tracing of the same file is already there (a retried upload)."""
    statement = (
        _insert(session)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[_TRACINGS.c.file_sha256])
        .returning(_TRACINGS.c.id)
    )
    found = (await session.execute(statement)).scalar_one_or_none()
    return None if found is None else int(found)


async def tracing_by_sha256(session: AsyncSession, file_sha256: str) -> EcgTracing | None:
    return (await session.execute(select(EcgTracing).where(EcgTracing.file_sha256 == file_sha256))).scalar_one_or_none()


async def tracing(session: AsyncSession, tracing_id: int) -> EcgTracing | None:
    return await session.get(EcgTracing, tracing_id)


async def tracings_of_patient(session: AsyncSession, patient_id_hash: str) -> list[EcgTracing]:
    statement = (
        select(EcgTracing)
        .where(EcgTracing.patient_id_hash == patient_id_hash)
        .order_by(EcgTracing.acquired_at, EcgTracing.id)
    )
    return list((await session.execute(statement)).scalars())


async def tracings_of_case(session: AsyncSession, case_id: int, limit: int = 50) -> list[EcgTracing]:
    """A case's tracings, the first uploaded first (the files API and the worklist page list them)."""
    statement = select(EcgTracing).where(EcgTracing.case_id == case_id).order_by(EcgTracing.id).limit(limit)
    return list((await session.execute(statement)).scalars())
