"""Shared column types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from annotated_types import Interval
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC. Naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store the UTC wall time; PostgreSQL keeps timestamptz as given.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # SQLite, and raw SQL paths on it
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
"""An integer a BIGINT column (or an OFFSET) can bind on every supported database."""
RowId = Annotated[int, Interval(ge=INT32_MIN, le=INT32_MAX)]
"""The id of a row whose key is an INTEGER column — 32-bit on PostgreSQL, where a larger value fails
inside the driver. Every integer a request carries into a query (path and query parameters, ids in
bodies) is declared RowId, or Int64 where its column is a BIGINT, so an out-of-range one is a 422 naming
the parameter instead of a 500 from the driver."""
MAX_OFFSET = 1_000_000
PageOffset = Annotated[int, Interval(ge=0, le=MAX_OFFSET)]
"""How many rows a list skips, in every room. Deeper pages cost the database a scan of every row before them, and
a list that long is searched by its filters, not paged through."""
