"""The database's own failures as answers a client can act on: unreachable → 503 with Retry-After, full → 507.

A request that meets a stopped, restarting or killed PostgreSQL server (or its pool timing out while it is
gone) has changed nothing: its transaction never committed. Answering it 503 with Retry-After tells the client
to send it again, which every write path takes idempotently; a 500 would say the platform is broken. A database
whose disk is full refuses the write that needed the space; the client learns which rule refused it (507,
`storage.full`), and the rest of the platform goes on serving. Both are recognised by db/failure_kinds.py.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cityhealth.db.engine import Database
from cityhealth.db.failure_kinds import is_storage_full, is_unavailable
from cityhealth.errors import DomainError
from cityhealth.observability import answer_errors, problem_response

logger = logging.getLogger("cityhealth.db")

RETRY_AFTER_S = 2  # what a client waits before sending again; a restart takes a few seconds


class DatabaseUnavailable(DomainError):
    """The database cannot be reached just now: nothing was changed, the same request may be sent again."""

    status = 503
    code = "database_unavailable"
    title = "Service unavailable"


class StorageFull(DomainError):
    """The database has no room for the write: it was refused whole."""

    status = 507
    code = "storage_full"
    title = "Insufficient storage"


def free_bytes(database: Database) -> int | None:
    """Free bytes on the filesystem of a SQLite database's file; None for PostgreSQL (its disk is the server's)."""
    if not database.is_sqlite or not database.url.database or database.url.database == ":memory:":
        return None
    return shutil.disk_usage(Path(database.url.database).parent).free


def ensure_room(database: Database, needed: int, reserve: int) -> None:
    """Refuse (507, `storage.reserve`) a write of `needed` bytes that would leave less than `reserve` free."""
    free = free_bytes(database)
    if free is not None and free - needed < reserve:
        raise StorageFull(
            f"the database's disk has {free} bytes free; this upload would leave less than the {reserve} bytes "
            "kept for everything else (CITYHEALTH_STORAGE_RESERVE_BYTES)",
            field="body", value=needed, rule="storage.reserve",
        )


def answer_for(exc: BaseException) -> DomainError | None:
    """The problem a database failure is answered with, or None when it is not one of those above."""
    if is_storage_full(exc):
        return StorageFull("the database has no room left for this write; nothing of it was stored",
                           field="body", rule="storage.full")
    if is_unavailable(exc):
        error = DatabaseUnavailable(f"the database cannot be reached just now; nothing was changed — send the "
                                    f"request again after {RETRY_AFTER_S} s", rule="database.available")
        error.headers = {"Retry-After": str(RETRY_AFTER_S)}  # type: ignore[attr-defined]
        return error
    return None


class DatabaseFailureMiddleware:
    """ASGI middleware: a database failure (above) raised by anything inside it, answered 503 with Retry-After
    (or 507) while no response has started; any other error is raised on, to the platform's 500.

    It goes by the failure's chain, not by the class raised, because the same lost connection arrives in many
    wrappings: SQLAlchemy's DBAPIError; the asyncpg adapter's own DBAPI errors (raised past SQLAlchemy's
    Connection by db/driver.py's direct BEGIN, on the real-time upload's path); asyncpg's errors (pg_driver's
    statements); or, when a handler's answer could not be sent because a write at the response's start failed,
    Starlette's RuntimeError around it. Installed twice (app.py, security/http.py): inside the platform's 500,
    around the routes and the hot-path lanes past the router; and around the audit middleware, whose writes run
    as the response starts — there a 404 or 403 whose denial could not be recorded is answered 503, not sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await answer_errors(self.app, scope, receive, send, self.database_failure)

    @staticmethod
    def database_failure(scope: Scope, exc: Exception) -> Response | None:
        error = answer_for(exc)
        if error is None:
            return None
        request_id = scope.get("state", {}).get("request_id")
        logger.warning("database failure answered %s", error.status,
                       extra={"request_id": request_id, "error_type": type(exc).__name__})
        return problem_response(error, request_id, getattr(error, "headers", None))
