"""SQL of the lab messages, reports, observations and specimens: a batch's rows in a few statements."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.lab_models import LabMessage, LabObservation, LabReport, LabSpecimen, LabSpecimenStep

MessageKey = tuple[str, str, str]
SpecimenKey = tuple[str, str]


async def accepted_keys(session: AsyncSession, keys: Collection[MessageKey]) -> set[MessageKey]:
    """Which of these (sending application, facility, control id) were accepted before."""
    if not keys:
        return set()
    columns = tuple_(LabMessage.sending_application, LabMessage.sending_facility, LabMessage.control_id)
    connection = await session.connection()
    rows = await connection.execute(
        select(LabMessage.sending_application, LabMessage.sending_facility, LabMessage.control_id).where(
            LabMessage.ack_code == "AA", columns.in_(sorted(set(keys)))
        )
    )
    return {(application, facility, control_id or "") for application, facility, control_id in rows}


# The batch's statements run on the session's connection as Core statements: the ORM's bulk paths cost more
# CPU than the listener's whole reading of a message, for rows that are never loaded as objects here.


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


async def _insert_returning_ids(session: AsyncSession, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    table = model.__table__
    connection = await session.connection()
    result = await connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
    return [row_id for (row_id,) in result]


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    return await _insert_returning_ids(session, LabMessage, rows)


async def insert_reports(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    return await _insert_returning_ids(session, LabReport, rows)


async def insert_observations(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection = await session.connection()
        await connection.execute(insert(_table(LabObservation)), list(rows))


async def specimens(session: AsyncSession, keys: Collection[SpecimenKey]) -> dict[SpecimenKey, tuple[int, str]]:
    """(id, state) of the specimens among `keys` that exist, locked on PostgreSQL until the batch commits."""
    if not keys:
        return {}
    statement = (
        select(LabSpecimen.sending_facility, LabSpecimen.specimen_no, LabSpecimen.id, LabSpecimen.state)
        .where(tuple_(LabSpecimen.sending_facility, LabSpecimen.specimen_no).in_(sorted(set(keys))))
        .with_for_update()
    )
    rows = await session.execute(statement)
    return {(facility, number): (specimen_id, state) for facility, number, specimen_id, state in rows}


async def insert_specimens(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    return await _insert_returning_ids(session, LabSpecimen, rows)


async def update_specimens(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Each row: `specimen_id`, `new_state`, `new_reason`, `now`."""
    if rows:
        statement = (
            update(LabSpecimen)
            .where(LabSpecimen.id == bindparam("specimen_id"))
            .values(state=bindparam("new_state"), reject_reason=bindparam("new_reason"), updated_at=bindparam("now"))
        )
        connection = await session.connection()
        await connection.execute(statement, list(rows))


async def insert_steps(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        connection = await session.connection()
        await connection.execute(insert(_table(LabSpecimenStep)), list(rows))


async def message_count(
    session: AsyncSession, *, sending_facility: str | None = None, control_id: str | None = None
) -> dict[str, int]:
    """How many messages were kept, by acknowledgement code."""
    statement = select(LabMessage.ack_code, func.count()).group_by(LabMessage.ack_code)
    if sending_facility is not None:
        statement = statement.where(LabMessage.sending_facility == sending_facility)
    if control_id is not None:
        statement = statement.where(LabMessage.control_id == control_id)
    rows = await session.execute(statement)
    return {code: count for code, count in rows}


async def messages(session: AsyncSession, *, control_id: str | None = None) -> list[LabMessage]:
    statement = select(LabMessage).order_by(LabMessage.id)
    if control_id is not None:
        statement = statement.where(LabMessage.control_id == control_id)
    return list(await session.scalars(statement))


async def reports_of(session: AsyncSession, message_ids: Collection[int]) -> list[LabReport]:
    return list(
        await session.scalars(
            select(LabReport).where(LabReport.message_id.in_(sorted(message_ids))).order_by(LabReport.id)
        )
    )


async def observations_of(session: AsyncSession, report_ids: Collection[int]) -> list[LabObservation]:
    return list(
        await session.scalars(
            select(LabObservation)
            .where(LabObservation.report_id.in_(sorted(report_ids)))
            .order_by(LabObservation.report_id, LabObservation.set_id)
        )
    )


async def specimen(session: AsyncSession, sending_facility: str, specimen_no: str) -> LabSpecimen | None:
    return await session.scalar(
        select(LabSpecimen).where(
            LabSpecimen.sending_facility == sending_facility, LabSpecimen.specimen_no == specimen_no
        )
    )


async def specimen_steps(session: AsyncSession, specimen_id: int) -> list[LabSpecimenStep]:
    return list(
        await session.scalars(
            select(LabSpecimenStep).where(LabSpecimenStep.specimen_id == specimen_id).order_by(LabSpecimenStep.id)
        )
    )


async def reports_of_resident(session: AsyncSession, resident_id: int, limit: int) -> list[LabReport]:
    """A resident's matched lab reports, the latest observed first (a case's page shows them)."""
    return list(
        await session.scalars(
            select(LabReport)
            .where(LabReport.resident_id == resident_id)
            .order_by(LabReport.observed_at.desc(), LabReport.id.desc())
            .limit(limit)
        )
    )
