"""Writes of rows of any collection table: insert, insert-or-add counters, insert-or-replace, delete by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.collection.repository.dialect import is_postgres
from cityhealth.db.base import Base


def _insert_for(session: AsyncSession, model: type[Base]) -> Any:
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(model)


async def upsert_add(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], keys: Sequence[str], counters: Sequence[str]
) -> None:
    """Insert rows, or add their counters to the existing row with the same key."""
    if not rows:
        return
    statement = _insert_for(session, model)
    table: Any = model.__table__
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + statement.excluded[name] for name in counters}
    )
    await session.execute(statement, rows)


async def upsert_replace(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], keys: Sequence[str], values: Sequence[str]
) -> None:
    """Insert rows, or overwrite the named columns of the existing row with the same key."""
    if not rows:
        return
    statement = _insert_for(session, model)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in values}
    )
    await session.execute(statement, rows)


async def delete_keys(
    session: AsyncSession, model: type[Base], keys: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    table: Any = model.__table__
    columns = [table.c[name] for name in keys]
    for start in range(0, len(rows), 300):
        await session.execute(delete(table).where(tuple_(*columns).in_(rows[start : start + 300])))


async def insert_rows(session: AsyncSession, model: type[Base], rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(model), rows)
