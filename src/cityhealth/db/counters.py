"""Counter tables kept up by the transactions that change what they count: one statement adds to many rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table, TypeDecorator
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.driver import is_postgres, pg_driver, pg_type


async def add_counts(session: AsyncSession, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Add each row's counts to its key's row (made at these counts when missing).

    The rows are written in key order: two transactions adding to the same counters lock them in one order and
    wait for each other, never deadlock. A key appears at most once in `rows` (add its deltas up first), and
    every row names the same counts.
    """
    if not rows:
        return
    ordered = sorted(rows, key=lambda row: tuple(row[key] for key in keys))
    counts = tuple(name for name in ordered[0] if name not in keys)
    if is_postgres(session):
        # One execution for all the rows, each column one array: executing a statement once per row (as
        # executemany does) cost PostgreSQL a statement's overhead per counter row, a dozen per lab batch and
        # hundreds per call report; on the driver's connection, without the statement layer's work per call.
        columns = (*keys, *counts)
        driver = await pg_driver(session)
        await driver.execute(_pg_upsert(table, tuple(keys), counts), *([row[c] for row in ordered] for c in columns))
        return
    connection = await session.connection()
    # One statement per table and counts, built once: its rows are parameters.
    await connection.execute(_sqlite_upsert(table, tuple(keys), counts), ordered)


@lru_cache(maxsize=64)
def _pg_upsert(table: Table, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
    columns = (*keys, *counts)
    # The driver is handed the values as they are: a column whose type converts them on the way in would be
    # written unconverted, so such a table is refused when its statement is first built.
    converted = [name for name in columns if isinstance(table.c[name].type, TypeDecorator)]
    if converted:
        raise TypeError(f"{table.name}: counter columns {converted} convert their values; add_counts cannot take them")
    arrays = ", ".join(
        f"${n}::{pg_type(table.c[name])}[]" for n, name in enumerate(columns, start=1)
    )
    added = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in counts)
    # The rows' order is the arrays' (unnest with no join or sort): the key order add_counts sorted them in.
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "  # noqa: S608 - our own names
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"
    )


@lru_cache(maxsize=64)
def _sqlite_upsert(table: Table, keys: tuple[str, ...], counts: tuple[str, ...]) -> Insert:
    statement = sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counts}
    )
