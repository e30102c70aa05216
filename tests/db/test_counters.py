"""db/counters.add_counts: rows made at their counts when missing, added to when present, in one statement."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select

from cityhealth.db.counters import _pg_upsert, add_counts
from cityhealth.db.engine import Database
from cityhealth.db.types import UTCDateTime
from cityhealth.hotline.knowledge_models import SelfServiceDay

TABLE: Table = SelfServiceDay.__table__  # type: ignore[assignment]
DAY = date(2026, 6, 1)


async def _rows(database: Database) -> dict[date, tuple[int, int]]:
    async with database.transaction() as session:
        found = await session.execute(select(TABLE.c.business_date, TABLE.c.asked, TABLE.c.answered))
        return {day: (asked, answered) for day, asked, answered in found}


def _row(day: date, asked: int, answered: int) -> dict[str, object]:
    return {"business_date": day, "asked": asked, "answered": answered}


@pytest.mark.asyncio
async def test_counts_are_made_then_added_to_whatever_the_order_and_number_of_rows(database: Database) -> None:
    days = [DAY + timedelta(days=n) for n in range(5)]
    async with database.transaction() as session:
        await add_counts(session, TABLE, ("business_date",), [_row(days[2], 1, 0), _row(days[0], 2, 1)])
    async with database.transaction() as session:  # out of key order, some new, some present
        await add_counts(session, TABLE, ("business_date",),
                         [_row(days[4], 1, 1), _row(days[0], 3, 3), _row(days[2], 1, 1), _row(days[1], 7, 0)])
        await add_counts(session, TABLE, ("business_date",), [_row(days[4], 1, 0)])  # one row, same statement
        await add_counts(session, TABLE, ("business_date",), [])
    assert await _rows(database) == {days[0]: (5, 4), days[1]: (7, 0), days[2]: (2, 1), days[4]: (2, 1)}


@pytest.mark.asyncio
async def test_transactions_adding_to_the_same_counters_at_once_lose_nothing(database: Database) -> None:
    days = [DAY + timedelta(days=n) for n in range(4)]

    async def add(n: int) -> None:
        rows = [_row(day, 1, n % 2) for day in (days if n % 2 else list(reversed(days)))]
        async with database.transaction() as session:
            await add_counts(session, TABLE, ("business_date",), rows)

    await asyncio.gather(*(add(n) for n in range(12)))
    assert await _rows(database) == {day: (12, 6) for day in days}


def test_a_counter_table_whose_columns_convert_their_values_is_refused_on_postgresql() -> None:
    # The PostgreSQL statement hands the values to the driver as they are; a converting column type
    # (UTCDateTime makes every instant UTC) would be skipped, so such a table is refused outright.
    table = Table("converted_counts", MetaData(), Column("at", UTCDateTime, primary_key=True), Column("n", Integer))
    with pytest.raises(TypeError, match=r"converted_counts: counter columns \['at'\]"):
        _pg_upsert(table, ("at",), ("n",))
