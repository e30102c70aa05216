"""The asyncpg connection under a session, for a room's hot statements on PostgreSQL (fixed SQL, no ORM)."""

from __future__ import annotations

from typing import Any

from asyncpg.exceptions import IntegrityConstraintViolationError  # type: ignore[import-untyped]
from sqlalchemy import Column, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

# session.info key: the asyncpg connection of the session's current transaction, with that transaction.
_DRIVER = "cityhealth.db.pg_driver"

# _BEGIN_FAILED: a BEGIN sent on the adapter directly fails past SQLAlchemy's Connection, which would neither
# wrap the error nor invalidate the connection — and the adapter forgets a transaction that did not start, so
# the pool's reset finds nothing to roll back and takes a connection the server closed back as sound, to fail
# every transaction begun on it for as long as it is busy (a restarted database's pool never recovered). The
# transaction is begun SQLAlchemy's way instead: on a lost connection that raises its DBAPIError, with the
# connection and the pool's older ones invalidated as on any statement; if it succeeds, the work goes on.


# A constraint refused a write: raised by SQLAlchemy for its own statements, by the driver for pg_driver()'s.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (IntegrityError, IntegrityConstraintViolationError)


_PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def pg_type(column: Column[Any]) -> str:
    """The column's type as PostgreSQL names it, for the casts of driver-level statements (`$1::integer[]`)."""
    return str(column.type.compile(dialect=_PG_DIALECT))


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def pg_driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, inside the session's transaction.

    A room's hot statements (ingest, call reports) run on it directly: fixed SQL, prepared once per connection,
    without the ORM's per-statement work. SQLAlchemy begins its transaction on the connection lazily, with its first
    statement; if none ran yet, one does now, so nothing here ever runs outside the transaction. The connection
    is remembered for the rest of the transaction: asking the session for it again (a greenlet switch into the
    ORM) cost more than most statements a batch sends.
    """
    sync_session = session.sync_session
    known = sync_session.info.get(_DRIVER)
    if known is not None and known[0] is sync_session.get_transaction() and known[1].is_in_transaction():
        return known[1]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN before the first statement it runs itself; asking it for
        # just that saves the round trip and the ORM's execution path of a `SELECT 1` on every transaction.
        begin = getattr(raw.dbapi_connection, "_start_transaction", None)
        if begin is not None and getattr(raw.dbapi_connection, "_transaction", "") is None:
            try:
                await begin()
            except Exception:
                await connection.execute(text("SELECT 1"))  # see _BEGIN_FAILED
        else:  # another adapter version: let a statement begin it
            await connection.execute(text("SELECT 1"))
    sync_session.info[_DRIVER] = (sync_session.get_transaction(), driver)
    return driver


def begin_in_greenlet(session: Session) -> None:
    """Inside `AsyncSession.run_sync`: check the connection out and send BEGIN now, remembering the asyncpg
    connection as pg_driver() does, so that the transaction's first pg_driver() call costs no hop into the ORM.

    For a transaction that will use pg_driver() at once (db.group_commit.group_transaction(begin=True)); with
    another adapter (no `_start_transaction`), or a transaction already begun, it leaves BEGIN to pg_driver().
    """
    raw = session.connection().connection
    adapted = raw.dbapi_connection
    begin = getattr(adapted, "_start_transaction", None)
    if begin is None or getattr(adapted, "_transaction", "") is not None:
        return
    try:
        await_(begin())
    except Exception:
        session.connection().exec_driver_sql("SELECT 1")  # see _BEGIN_FAILED
        return
    session.info[_DRIVER] = (session.get_transaction(), raw.driver_connection)
