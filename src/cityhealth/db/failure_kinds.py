"""What a database error means, whichever wrapping it arrives in: the database unreachable or its connection lost,
its disk full, or a transaction the server rolled back under concurrency (a deadlock's or a serialization
conflict's victim) — recognised from the driver's error codes (SQLSTATE for PostgreSQL, SQLite's result code,
errno), however deep in an exception's chain they are.

Free of the web stack, so that the job queue and the CLI's paths can ask it without importing the server;
db/failures.py turns the answers into HTTP problems.
"""

from __future__ import annotations

import errno

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_SQLITE_FULL = 13
# SQLSTATE classes/codes: 08 connection exception, 57P01-57P03 shutdown / crash / cannot connect now,
# 53100 disk full.
_PG_UNAVAILABLE_PREFIXES = ("08", "57P01", "57P02", "57P03")
_PG_DISK_FULL = "53100"
_UNAVAILABLE_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                       errno.EHOSTUNREACH, errno.ENETUNREACH}
# asyncpg's errors for a connection that is gone (no SQLSTATE: the client side noticed).
_GONE_CONNECTION_ERRORS = {"ConnectionDoesNotExistError", "InterfaceError", "ConnectionFailureError",
                           "InternalClientError"}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper → the driver's error
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return seen


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_storage_full(exc: BaseException) -> bool:
    """Whether the database (or the disk under it) had no room for a write somewhere in `exc`'s chain."""
    for error in _chain(exc):
        if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL or _sqlstate(error) == _PG_DISK_FULL:
            return True
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(error):  # aiosqlite may re-raise without the result code
            return True
    return False


def _gone(error: BaseException) -> bool:
    """One link of a chain: the database could not be reached, or the connection was lost."""
    return (
        isinstance(error, PoolTimeout)
        or (isinstance(error, DBAPIError) and error.connection_invalidated)
        or _sqlstate(error).startswith(_PG_UNAVAILABLE_PREFIXES)
        or (type(error).__name__ in _GONE_CONNECTION_ERRORS and type(error).__module__.startswith("asyncpg"))
        or isinstance(error, ConnectionError | TimeoutError)
        or (isinstance(error, OSError) and error.errno in _UNAVAILABLE_ERRNOS)
    )


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or its connection was lost (not a bad statement)."""
    return any(_gone(error) for error in _chain(exc))


# SQLSTATE 40001 serialization failure, 40P01 deadlock detected: the transaction was rolled back by the server's
# own concurrency control, and the same work run again may well succeed.
_PG_RETRY_STATES = ("40001", "40P01")


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a failure that running the same transaction again later may not meet: the database
    unavailable, or the transaction rolled back as a deadlock's or a serialization conflict's victim."""
    return any(_gone(error) or _sqlstate(error) in _PG_RETRY_STATES for error in _chain(exc))
