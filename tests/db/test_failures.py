"""A database that cannot be reached answers 503 with Retry-After, one that is full 507; other errors stay 500s."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator

import httpx
import pytest
from asyncpg.exceptions import (  # type: ignore[import-untyped]
    AdminShutdownError,
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    DiskFullError,
    UniqueViolationError,
)
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tests.factories.security import headers_for, machine

from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.db.failures import RETRY_AFTER_S, answer_for, is_storage_full, is_unavailable
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
