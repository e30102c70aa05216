"""SQL of the lab messages, reports, observations and specimens: a batch's rows in a few statements."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.driver import is_postgres, pg_driver, pg_type
from cityhealth.telemed.lab_models import LabMessage, LabObservation, LabReport, LabSpecimen, LabSpecimenStep

MessageKey = tuple[str, str, str]
SpecimenKey = tuple[str, str]


# On PostgreSQL a lookup by a batch's composite keys probes the unique index once per key (a lateral subquery per
# key, in the keys' order). A row-value IN list let the planner take the columns the keys share as the index
# condition and filter the rest: a dozen lab systems under one application name made every batch read every
# accepted message of that name, 11.6 ms a batch at 11,520 messages, growing with the month.
# The listener's statements on PostgreSQL run on the driver's connection (db.driver.pg_driver): fixed SQL with
# positional parameters, where each statement through SQLAlchemy's execution layer cost the listener more CPU
# than PostgreSQL spent running it.
_ACCEPTED_PROBE = (
    "SELECT k.application, k.facility, k.control_id FROM unnest($1::varchar[], $2::varchar[], $3::varchar[]) "
    "AS k(application, facility, control_id) "
    "CROSS JOIN LATERAL (SELECT 1 FROM telemed_lab_messages AS m WHERE m.sending_application = k.application "
    "AND m.sending_facility = k.facility AND m.control_id = k.control_id AND m.ack_code = 'AA' LIMIT 1) AS found"
)
_SPECIMENS_PROBE = (
    "SELECT s.sending_facility, s.specimen_no, s.id, s.state FROM unnest($1::varchar[], $2::varchar[]) "
    "WITH ORDINALITY AS k(facility, number, n) "
    "CROSS JOIN LATERAL (SELECT id, sending_facility, specimen_no, state FROM telemed_lab_specimens "
    "WHERE sending_facility = k.facility AND specimen_no = k.number FOR UPDATE) AS s ORDER BY k.n"
)


async def accepted_keys(session: AsyncSession, keys: Collection[MessageKey]) -> set[MessageKey]:
    """Which of these (sending application, facility, control id) were accepted before."""
    if not keys:
        return set()
    ordered = sorted(set(keys))
    if is_postgres(session):
        driver = await pg_driver(session)
        rows = await driver.fetch(_ACCEPTED_PROBE, *(list(column) for column in zip(*ordered, strict=True)))
    else:
        connection = await session.connection()
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
    if is_postgres(session):
        driver = await pg_driver(session)
        arrays = [
            *_arrays(_MESSAGE_COLUMNS, messages),
            *_arrays(_REPORT_COLUMNS, reports, parent="message_index"),
            *_arrays(_OBSERVATION_COLUMNS, observations, parent="report_index"),
        ]
        return [row_id for (row_id,) in await driver.fetch(_results_statement(), *arrays)]
    connection = await session.connection()
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


def _arrays(columns: list[Column[Any]], rows: Sequence[dict[str, Any]], parent: str | None = None) -> list[list[Any]]:
    """The rows as one array per column (the parent's position first, when named), in _unnest's order."""
    arrays = [[row[parent] + 1 for row in rows]] if parent is not None else []  # ordinality counts from 1
    return arrays + [[row[column.name] for row in rows] for column in columns]


def _unnest(columns: list[Column[Any]], parent: bool, first: int) -> str:
    """unnest of the arrays from parameter $first on: the parent's position (when `parent`), then `columns`."""
    types = (["integer"] if parent else []) + [pg_type(column) for column in columns]
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(types, start=first))
    names = (["parent"] if parent else []) + [column.name for column in columns]
    return f"unnest({arrays}) WITH ORDINALITY AS u({', '.join(names)}, n)"


@lru_cache(maxsize=1)
def _results_statement() -> str:
    def names(columns: list[Column[Any]], alias: str = "") -> str:
        return ", ".join(f"{alias}{column.name}" for column in columns)

    def next_id(model: Any) -> str:  # the sequence of the table's serial id, named as PostgreSQL names it
        return f"nextval('{_table(model).name}_id_seq')"

    messages, reports, observations = (_table(model).name for model in (LabMessage, LabReport, LabObservation))
    first_report = 1 + len(_MESSAGE_COLUMNS)
    first_observation = first_report + 1 + len(_REPORT_COLUMNS)
    return (
        f"WITH m AS MATERIALIZED (SELECT {next_id(LabMessage)} AS id, u.n, {names(_MESSAGE_COLUMNS, 'u.')} "  # noqa: S608 - names of our own tables and columns
        f"FROM {_unnest(_MESSAGE_COLUMNS, False, 1)}), "
        f"im AS (INSERT INTO {messages} (id, {names(_MESSAGE_COLUMNS)}) SELECT id, {names(_MESSAGE_COLUMNS)} FROM m), "
        f"r AS MATERIALIZED (SELECT {next_id(LabReport)} AS id, m.id AS message_id, u.n, "
        f"{names(_REPORT_COLUMNS, 'u.')} FROM {_unnest(_REPORT_COLUMNS, True, first_report)} "
        "JOIN m ON m.n = u.parent), "
        f"ir AS (INSERT INTO {reports} (id, message_id, {names(_REPORT_COLUMNS)}) "
        f"SELECT id, message_id, {names(_REPORT_COLUMNS)} FROM r), "
        f"io AS (INSERT INTO {observations} (report_id, {names(_OBSERVATION_COLUMNS)}) "
        f"SELECT r.id, {names(_OBSERVATION_COLUMNS, 'u.')} "
        f"FROM {_unnest(_OBSERVATION_COLUMNS, True, first_observation)} JOIN r ON r.n = u.parent) "
        "SELECT id FROM m ORDER BY n"
    )


async def specimens(session: AsyncSession, keys: Collection[SpecimenKey]) -> dict[SpecimenKey, tuple[int, str]]:
    """(id, state) of the specimens among `keys` that exist, locked on PostgreSQL until the batch commits (in the
    keys' order, so that two batches wait for each other rather than deadlock)."""
    if not keys:
        return {}
    ordered = sorted(set(keys))
    if is_postgres(session):
        driver = await pg_driver(session)
        rows = await driver.fetch(_SPECIMENS_PROBE, *(list(column) for column in zip(*ordered, strict=True)))
    else:
        connection = await session.connection()
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
