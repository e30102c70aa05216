"""A database that cannot be reached answers 503 with Retry-After, one that is full 507; other errors stay 500s.

The middle of this file holds the failures the database-restart drill (tests/drills/db_restart.py) met as 500s
before they were answered by their chain rather than by the class raised: the asyncpg adapter's own DBAPI errors
from the real-time upload's direct BEGIN, and a denial's audit write failing as a 404 was about to start.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asyncpg.exceptions import (  # type: ignore[import-untyped]
    AdminShutdownError,
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    DiskFullError,
    InterfaceError,
    InternalClientError,
    UniqueViolationError,
)
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tests.conftest import BACKEND, PG_URL
from tests.factories.collection import add_organization, make_record
from tests.factories.security import headers_for, machine

from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock
from cityhealth.collection import realtime
from cityhealth.collection import service as collection_service
from cityhealth.config import Settings
from cityhealth.db.admin import fetch_on_server
from cityhealth.db.engine import Database
from cityhealth.db.failures import RETRY_AFTER_S, answer_for, is_storage_full, is_unavailable
from cityhealth.security import audit
from cityhealth.security.principals import Scope


def _sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    CannotConnectNowError("the database system is starting up"),
    AdminShutdownError("terminating connection due to administrator command"),
    ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    PoolTimeout("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
    OperationalError("SELECT 1", {}, CannotConnectNowError("the database system is shutting down")),
])
def test_a_lost_or_refused_connection_is_unavailability(error: Exception) -> None:
    assert is_unavailable(error)
    answer = answer_for(error)
    assert answer is not None
    assert (answer.status, answer.code) == (503, "database_unavailable")
    assert answer.headers == {"Retry-After": str(RETRY_AFTER_S)}  # type: ignore[attr-defined]


@pytest.mark.parametrize("error", [
    _sqlite_error(13, "database or disk is full"),
    DiskFullError("could not extend file"),
    OSError(28, "No space left on device"),
    OperationalError("INSERT", {}, _sqlite_error(13, "database or disk is full")),
])
def test_a_write_with_no_room_is_storage_full(error: Exception) -> None:
    assert is_storage_full(error)
    answer = answer_for(error)
    assert answer is not None
    assert (answer.status, answer.code, answer.rule) == (507, "storage_full", "storage.full")


@pytest.mark.parametrize("error", [
    FileNotFoundError(2, "No such file or directory"),
    UniqueViolationError("duplicate key value violates unique constraint"),
    IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
    _sqlite_error(1, "no such table: nothing"),
    ValueError("a bug"),
])
def test_other_errors_are_left_to_the_500(error: Exception) -> None:
    assert answer_for(error) is None


@pytest.fixture
async def unreachable(app: FastAPI, settings: Settings, clock: SimulatedClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its database at a port nothing listens on (a PostgreSQL server that is down); its token
    issued while the database was up."""
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=1))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/down")
    down = create_app(settings, database=database, clock=clock)
    transport = httpx.ASGITransport(app=down, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        http.headers.update(headers)
        yield http
    await database.dispose()


async def test_readiness_and_requests_meet_a_database_that_is_down_with_503_and_retry_after(
    unreachable: httpx.AsyncClient,
) -> None:
    ready = await unreachable.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == str(RETRY_AFTER_S)
    upload = await unreachable.post("/api/collection/forms/outpatient_visit/records", json=[{"record_id": "x"}])
    assert upload.status_code == 503, upload.text
    assert upload.headers["retry-after"] == str(RETRY_AFTER_S)
    assert upload.json()["code"] == "database_unavailable"


# --- The failures the database-restart drill met as 500s ------------------------------------------------------

_ASYNCPG_DBAPI = PGDialect_asyncpg.import_dbapi()


def _adapted(error: Exception) -> Exception:
    """`error` as SQLAlchemy's asyncpg adapter raises it: its own DBAPI class, the driver's error as the cause.
    Raised so past SQLAlchemy's Connection (no DBAPIError around it) by db/driver.py's direct BEGIN."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(_ASYNCPG_DBAPI, error)
    except Exception as translated:
        return translated
    raise AssertionError(f"the adapter did not translate {error!r}")


def _wrapped_by_starlette(error: Exception) -> RuntimeError:
    """Starlette's error when a handler's answer could not be sent because `error` was raised as it started."""
    try:
        raise RuntimeError("Caught handled exception, but response already started.") from error
    except RuntimeError as wrapped:
        return wrapped


def _lost_connection() -> DBAPIError:
    return DBAPIError("COMMIT", {}, ConnectionDoesNotExistError(
        "connection was closed in the middle of operation: terminating connection due to administrator command"),
        connection_invalidated=True)


def _escaped() -> list[Exception]:
    """Each class that reached the platform's 500 in the drill, built as it was raised there."""
    return [
        _adapted(ConnectionDoesNotExistError("connection was closed in the middle of operation")),
        _adapted(InterfaceError("connection is closed")),
        _adapted(InternalClientError("cannot switch to state 15; another operation (2) is in progress")),
        _wrapped_by_starlette(_lost_connection()),
    ]


_ESCAPED_IDS = ["adapter-Error", "adapter-InterfaceError", "adapter-InternalClientError", "starlette-RuntimeError"]


def test_the_escaped_errors_are_not_of_a_class_a_handler_named() -> None:
    # Why the drill saw 500s: an exception handler found by class never saw these.
    for error in _escaped():
        assert not isinstance(error, DBAPIError | ConnectionError | TimeoutError)
        assert type(error).__module__ != "asyncpg.exceptions"


@pytest.mark.parametrize("error", _escaped(), ids=_ESCAPED_IDS)
def test_the_escaped_errors_are_unavailability_by_their_chain(error: Exception) -> None:
    answer = answer_for(error)
    assert answer is not None
    assert (answer.status, answer.code) == (503, "database_unavailable")
    assert answer.headers == {"Retry-After": str(RETRY_AFTER_S)}  # type: ignore[attr-defined]


@pytest.fixture
async def sender(app: FastAPI, database: Database, clock: SimulatedClock) -> tuple[str, dict[str, str]]:
    """A hospital's code and its upload client's headers (which may read its jobs too)."""
    org = await add_organization(database, clock, "H0001")
    return org.code, await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id))


def _batch(code: str, clock: SimulatedClock, prefix: str) -> list[dict[str, Any]]:
    return [make_record("outpatient_visit", code, f"{prefix}-{n}", clock.now()) for n in range(3)]


def _is_503_with_retry_after(response: httpx.Response) -> bool:
    return (response.status_code == 503 and response.headers.get("retry-after") == str(RETRY_AFTER_S)
            and response.json()["code"] == "database_unavailable")


@pytest.mark.parametrize("error", _escaped(), ids=_ESCAPED_IDS)
async def test_a_realtime_upload_past_the_router_meeting_a_lost_connection_answers_503(
    client: httpx.AsyncClient, sender: tuple[str, dict[str, str]], clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch, error: Exception,
) -> None:
    code, headers = sender

    async def write(*_arguments: Any) -> Any:
        raise error

    monkeypatch.setattr(realtime.BatchGroups, "write", write)
    response = await client.post("/api/collection/forms/outpatient_visit/records",
                                 json=_batch(code, clock, "lost"), headers=headers)
    assert _is_503_with_retry_after(response), response.text


@pytest.mark.parametrize("error", _escaped(), ids=_ESCAPED_IDS)
async def test_a_routed_read_meeting_a_lost_connection_answers_503(
    client: httpx.AsyncClient, sender: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    _, headers = sender

    async def job_for(*_arguments: Any) -> Any:
        raise error

    monkeypatch.setattr(collection_service, "job_for", job_for)
    response = await client.get("/api/collection/jobs/1", headers=headers)
    assert _is_503_with_retry_after(response), response.text


async def test_a_statement_error_past_the_router_stays_a_500(
    client: httpx.AsyncClient, sender: tuple[str, dict[str, str]], clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, headers = sender

    async def write(*_arguments: Any) -> Any:
        raise _adapted(UniqueViolationError("duplicate key value violates unique constraint"))

    monkeypatch.setattr(realtime.BatchGroups, "write", write)
    response = await client.post("/api/collection/forms/outpatient_visit/records",
                                 json=_batch(code, clock, "bug"), headers=headers)
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"


async def test_a_not_found_whose_denial_cannot_be_recorded_answers_503_not_404(
    client: httpx.AsyncClient, sender: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An authenticated caller's 404 is audited as the response starts (security/http.py); the database went
    # away between the lookup and that write. The 404 is not sent without its audit event, nor a 500 instead.
    _, headers = sender
    assert (await client.get("/api/collection/jobs/999999", headers=headers)).status_code == 404

    async def write_events(*_arguments: Any) -> None:
        raise _lost_connection()

    monkeypatch.setattr(audit, "write_events", write_events)
    response = await client.get("/api/collection/jobs/999999", headers=headers)
    assert _is_503_with_retry_after(response), response.text
    assert response.headers["x-content-type-options"] == "nosniff"  # still inside the security headers
    assert "x-request-id" in response.headers


@pytest.mark.skipif(BACKEND != "postgresql", reason="a PostgreSQL server ends the connections")
async def test_an_upload_on_pooled_connections_the_server_ended_answers_503_then_the_pool_recovers(
    settings: Settings, database: Database, clock: SimulatedClock,
) -> None:
    # The drill's restart in small: the pool's connections are ended by the server (as a shutdown ends them);
    # the next upload's BEGIN, sent on the driver's connection itself, meets one of them. No task worker in
    # the server: its periodic work would meet them first, and SQLAlchemy's error would empty the pool.
    quiet = create_app(settings.model_copy(update={"server_worker_concurrency": 0}), database=database, clock=clock)
    async with quiet.router.lifespan_context(quiet):
        org = await add_organization(database, clock, "H0001")
        headers = await headers_for(quiet, machine(Scope.COLLECTION_UPLOAD, organization_id=org.id))
        transport = httpx.ASGITransport(app=quiet, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as http:
            url = "/api/collection/forms/outpatient_visit/records"
            first = await http.post(url, json=_batch(org.code, clock, "before"))
            assert first.status_code == 200, first.text
            name = make_url(settings.effective_database_url).database
            pids = [row[0] for row in await fetch_on_server(
                PG_URL, "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)]
            assert pids
            await fetch_on_server(PG_URL, "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
            for _ in range(200):  # pg_terminate_backend only signals: wait for those server processes to end
                if not await fetch_on_server(PG_URL, "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])",
                                             pids):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the server processes {pids} did not end within 10 s")
            lost = await http.post(url, json=_batch(org.code, clock, "after"))
            assert _is_503_with_retry_after(lost), lost.text
            # Sent again, as the client was told: the connection the server closed was not taken back into the
            # pool, nor its other connections of before (one request saw the restart).
            again = await http.post(url, json=_batch(org.code, clock, "after"))
            assert again.status_code == 200, again.text
