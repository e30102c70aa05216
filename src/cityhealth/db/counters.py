"""Counter tables kept up by the transactions that change what they count: one statement adds to many rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def add_counts(session: AsyncSession, table: Table, keys: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Add each row's counts to its key's row (made at these counts when missing), in one upsert.

    The rows are written in key order: two transactions adding to the same counters lock them in one order and
    wait for each other, never deadlock. A key appears at most once in `rows` (add its deltas up first).
    """
    if not rows:
        return
    ordered = sorted(rows, key=lambda row: tuple(row[key] for key in keys))
    counts = [name for name in ordered[0] if name not in keys]
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(ordered)
    await session.execute(statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counts}))
