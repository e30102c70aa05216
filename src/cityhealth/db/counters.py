"""Counter tables kept up by the transactions that change what they count: one statement adds to many rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


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
    connection = await session.connection()
    # One statement per table and counts, built once: its rows are parameters (one execution of many), where a
    # multi-row VALUES was built and compiled anew for every call, the largest CPU cost of a lab batch's counters.
    await connection.execute(_upsert(table, tuple(keys), counts, connection.dialect.name), ordered)


@lru_cache(maxsize=64)
def _upsert(table: Table, keys: tuple[str, ...], counts: tuple[str, ...], dialect: str) -> Insert:
    statement = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counts}
    )
