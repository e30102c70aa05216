"""SQL of the lab messages, reports, observations and specimens: a batch's rows in a few statements."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, TextClause, bindparam, func, insert, select, text, tuple_, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.telemed.lab_models import LabMessage, LabObservation, LabReport, LabSpecimen, LabSpecimenStep

MessageKey = tuple[str, str, str]
SpecimenKey = tuple[str, str]


# On PostgreSQL a lookup by a batch's composite keys probes the unique index once per key (a lateral subquery per
# key, in the keys' order). A row-value IN list let the planner take the columns the keys share as the index
# condition and filter the rest: a dozen lab systems under one application name made every batch read every
# accepted message of that name, 11.6 ms a batch at 11,520 messages, growing with the month.
_ACCEPTED_PROBE = text(
    "SELECT k.application, k.facility, k.control_id FROM unnest("
    "CAST(:applications AS VARCHAR[]), CAST(:facilities AS VARCHAR[]), CAST(:control_ids AS VARCHAR[])"
    ") AS k(application, facility, control_id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM telemed_lab_messages AS m WHERE m.sending_application = k.application "
    "AND m.sending_facility = k.facility AND m.control_id = k.control_id AND m.ack_code = 'AA' LIMIT 1) AS found"
)
_SPECIMENS_PROBE = text(
    "SELECT s.sending_facility, s.specimen_no, s.id, s.state FROM unnest("
    "CAST(:facilities AS VARCHAR[]), CAST(:numbers AS VARCHAR[])) WITH ORDINALITY AS k(facility, number, n) "
    "CROSS JOIN LATERAL (SELECT id, sending_facility, specimen_no, state FROM telemed_lab_specimens "
    "WHERE sending_facility = k.facility AND specimen_no = k.number FOR UPDATE) AS s ORDER BY k.n"
)


async def accepted_keys(session: AsyncSession, keys: Collection[MessageKey]) -> set[MessageKey]:
    """Which of these (sending application, facility, control id) were accepted before."""
    if not keys:
        return set()
    ordered = sorted(set(keys))
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        applications, facilities, control_ids = (list(column) for column in zip(*ordered, strict=True))
        rows = await connection.execute(
            _ACCEPTED_PROBE, {"applications": applications, "facilities": facilities, "control_ids": control_ids}
        )
    else:
        columns = tuple_(LabMessage.sending_application, LabMessage.sending_facility, LabMessage.control_id)
        rows = await connection.execute(
            select(LabMessage.sending_application, LabMessage.sending_facility, LabMessage.control_id).where(
                LabMessage.ack_code == "AA", columns.in_(ordered)
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


async def insert_results(
    session: AsyncSession,
    messages: Sequence[dict[str, Any]],
    reports: Sequence[dict[str, Any]],
    observations: Sequence[dict[str, Any]],
) -> list[int]:
    """Insert a batch's messages, their reports (each naming its message by `message_index`, its position in
    `messages`) and the reports' observations (`report_index`); the messages' ids, in order."""
    if not messages:
        return []
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        statement = _results_statement(connection.dialect)
        params = {
            **_arrays("m", _MESSAGE_COLUMNS, messages),
            **_arrays("r", _REPORT_COLUMNS, reports, parent="message_index"),
            **_arrays("o", _OBSERVATION_COLUMNS, observations, parent="report_index"),
        }
        return [row_id for (row_id,) in await connection.execute(statement, params)]
    message_ids = await _insert_returning_ids(session, LabMessage, messages)
    report_ids = await _insert_returning_ids(
        session,
        LabReport,
        [_without(row, "message_index") | {"message_id": message_ids[row["message_index"]]} for row in reports],
    )
    if observations:
        rows = [_without(row, "report_index") | {"report_id": report_ids[row["report_index"]]} for row in observations]
        await connection.execute(insert(_table(LabObservation)), rows)
    return message_ids


def _without(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != key}


# On PostgreSQL the three inserts are one statement, its rows passed as one array per column (unnest): one
# round trip and one statement to plan for the batch, however many rows; each row's id is drawn from its
# table's sequence in the statement, and the children join their parent by its position in the batch. The
# foreign keys are checked at the end of the statement, when every row is in.
def _columns(model: Any, *skipped: str) -> list[Column[Any]]:
    return [column for column in _table(model).columns if column.name not in ("id", *skipped)]


_MESSAGE_COLUMNS = _columns(LabMessage)
_REPORT_COLUMNS = _columns(LabReport, "message_id")
_OBSERVATION_COLUMNS = _columns(LabObservation, "report_id")


def _arrays(
    prefix: str, columns: list[Column[Any]], rows: Sequence[dict[str, Any]], parent: str | None = None
) -> dict[str, list[Any]]:
    arrays = {f"{prefix}_{column.name}": [row[column.name] for row in rows] for column in columns}
    if parent is not None:
        arrays[f"{prefix}__parent"] = [row[parent] + 1 for row in rows]  # ordinality counts from 1
    return arrays


def _unnest(dialect: Dialect, prefix: str, columns: list[Column[Any]], parent: bool) -> str:
    casts = [f"CAST(:{prefix}__parent AS INTEGER[])"] if parent else []
    casts += [f"CAST(:{prefix}_{c.name} AS {c.type.compile(dialect=dialect)}[])" for c in columns]
    names = (["parent"] if parent else []) + [c.name for c in columns]
    return f"unnest({', '.join(casts)}) WITH ORDINALITY AS u({', '.join(names)}, n)"


@lru_cache(maxsize=4)
def _results_statement(dialect: Dialect) -> TextClause:
    def names(columns: list[Column[Any]], alias: str = "") -> str:
        return ", ".join(f"{alias}{column.name}" for column in columns)

    def next_id(model: Any) -> str:
        return f"nextval(pg_get_serial_sequence('{_table(model).name}', 'id'))"

    messages, reports, observations = (_table(model).name for model in (LabMessage, LabReport, LabObservation))
    return text(
        f"WITH m AS MATERIALIZED (SELECT {next_id(LabMessage)} AS id, u.n, {names(_MESSAGE_COLUMNS, 'u.')} "  # noqa: S608 - names of our own tables and columns
        f"FROM {_unnest(dialect, 'm', _MESSAGE_COLUMNS, False)}), "
        f"im AS (INSERT INTO {messages} (id, {names(_MESSAGE_COLUMNS)}) SELECT id, {names(_MESSAGE_COLUMNS)} FROM m), "
        f"r AS MATERIALIZED (SELECT {next_id(LabReport)} AS id, m.id AS message_id, u.n, "
        f"{names(_REPORT_COLUMNS, 'u.')} FROM {_unnest(dialect, 'r', _REPORT_COLUMNS, True)} "
        "JOIN m ON m.n = u.parent), "
        f"ir AS (INSERT INTO {reports} (id, message_id, {names(_REPORT_COLUMNS)}) "
        f"SELECT id, message_id, {names(_REPORT_COLUMNS)} FROM r), "
        f"io AS (INSERT INTO {observations} (report_id, {names(_OBSERVATION_COLUMNS)}) "
        f"SELECT r.id, {names(_OBSERVATION_COLUMNS, 'u.')} FROM {_unnest(dialect, 'o', _OBSERVATION_COLUMNS, True)} "
        "JOIN r ON r.n = u.parent) "
        "SELECT id FROM m ORDER BY n"
    )


async def specimens(session: AsyncSession, keys: Collection[SpecimenKey]) -> dict[SpecimenKey, tuple[int, str]]:
    """(id, state) of the specimens among `keys` that exist, locked on PostgreSQL until the batch commits (in the
    keys' order, so that two batches wait for each other rather than deadlock)."""
    if not keys:
        return {}
    ordered = sorted(set(keys))
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        facilities, numbers = (list(column) for column in zip(*ordered, strict=True))
        rows = await connection.execute(_SPECIMENS_PROBE, {"facilities": facilities, "numbers": numbers})
    else:
        rows = await connection.execute(
            select(LabSpecimen.sending_facility, LabSpecimen.specimen_no, LabSpecimen.id, LabSpecimen.state).where(
                tuple_(LabSpecimen.sending_facility, LabSpecimen.specimen_no).in_(ordered)
            )
        )
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
