"""Many rows named by a composite key, read, changed or removed in one statement, and many new rows added.

On PostgreSQL the keys travel as one array per column and are joined as a table (`unnest`): the statement's text is
the same whatever their number, so the driver prepares it once, and the planner joins the keys against the index
instead of expanding a thousand-term OR. On SQLite (in the process, no round trips) the same work is a tuple IN,
in chunks the engine's parameter limit allows, or an executemany. New rows go to PostgreSQL by binary COPY, each
value passed through its column type's own bind processing first (UTC times, JSON text), as a statement would.

Three hot paths keep their own hand-written `unnest` statements, because what they need is not one table's rows
by key: the real-time upload's counters (collection/repository/counters.py) and the group commit of bookings
(booking/group_repository.py) each add to several tables in one statement of chained CTEs, once per batch, with
upserts that add to the stored counts; the lab listener (telemed/lab_repository.py) inserts messages, reports and
observations joined by position in one statement, and probes its keys one index lookup each (a lateral join: a
row-value list let the planner scan every message of a shared application name). They also run on the driver's
own connection, where a statement through SQLAlchemy's execution layer cost more CPU than the database spent on it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.driver import is_postgres, pg_driver

CHUNK = 500  # keys per SQLite statement: well inside its limit of bound parameters


def _keys_table(table: Table, names: Sequence[str], rows: Collection[Sequence[Any]]) -> Any:
    """The rows as a derived table `k` of the columns `names` (typed like the table's columns of those names)."""
    arrays = [bindparam(f"k_{name}", [row[i] for row in rows], type_=ARRAY(table.c[name].type))
              for i, name in enumerate(names)]
    return func.unnest(*arrays).table_valued(*names).render_derived(name="k")


def _joined(table: Table, names: Sequence[str], keys: Any) -> ColumnElement[bool]:
    return and_(*(table.c[name] == keys.c[name] for name in names))


async def select_by_keys(session: AsyncSession, table: Table, columns: Sequence[str], names: Sequence[str],
                         keys: Collection[Sequence[Any]], *, where: Sequence[ColumnElement[bool]] = (),
                         for_update: bool = False) -> list[Any]:
    """`columns` of the rows whose `names` columns equal one of `keys` (and satisfy `where`); locked when asked."""
    if not keys:
        return []
    selected = [table.c[name] for name in columns]
    if is_postgres(session):
        derived = _keys_table(table, names, keys)
        statement = select(*selected).select_from(table.join(derived, _joined(table, names, derived))).where(*where)
        if for_update:
            statement = statement.with_for_update(of=table)
        return list(await session.execute(statement))
    ordered = sorted(set(map(tuple, keys)))
    found: list[Any] = []
    for start in range(0, len(ordered), CHUNK):
        found += await session.execute(select(*selected).where(
            tuple_(*(table.c[name] for name in names)).in_(ordered[start:start + CHUNK]), *where))
    return found


async def update_by_keys(session: AsyncSession, table: Table, names: Sequence[str], values: Sequence[str],
                         rows: Collection[Sequence[Any]], *, where: Sequence[ColumnElement[bool]] = (),
                         fixed: dict[str, Any] | None = None) -> None:
    """Set `values` (the rows' last columns, after the key's) and `fixed` on each row named by a row's key."""
    if not rows:
        return
    fixed = fixed or {}
    if is_postgres(session):
        derived = _keys_table(table, [*names, *values], rows)
        await session.execute(update(table).where(_joined(table, names, derived), *where)
                              .values({**{name: derived.c[name] for name in values}, **fixed}))
        return
    statement = (update(table).where(*(table.c[name] == bindparam(f"k_{name}") for name in names), *where)
                 .values({**{name: bindparam(f"v_{name}") for name in values}, **fixed}))
    connection = await session.connection()
    await connection.execute(statement, [
        {**{f"k_{name}": row[i] for i, name in enumerate(names)},
         **{f"v_{name}": row[len(names) + i] for i, name in enumerate(values)}} for row in rows])


async def delete_by_keys(session: AsyncSession, table: Table, names: Sequence[str],
                         keys: Collection[Sequence[Any]]) -> None:
    if not keys:
        return
    if is_postgres(session):
        derived = _keys_table(table, names, keys)
        await session.execute(delete(table).where(_joined(table, names, derived)))
        return
    ordered = sorted(set(map(tuple, keys)))
    for start in range(0, len(ordered), CHUNK):
        await session.execute(delete(table).where(
            tuple_(*(table.c[name] for name in names)).in_(ordered[start:start + CHUNK])))


async def insert_many(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Add the rows (each with the same columns): binary COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    if not is_postgres(session):
        await session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    dialect = session.get_bind().dialect
    processors = [table.c[name].type.bind_processor(dialect) for name in names]
    records = [tuple(value if process is None or value is None else process(value)
                     for process, value in zip(processors, (row[name] for name in names), strict=True))
               for row in rows]
    driver = await pg_driver(session)
    await driver.copy_records_to_table(table.name, records=records, columns=names)
