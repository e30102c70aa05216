"""The audit trail's contents: denials are recorded, and the suite's harness catches what is not."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI
from sqlalchemy import select, text

from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.context import ClockDep, DatabaseDep, SessionDep
from cityhealth.db.engine import Database
from cityhealth.errors import NotFound
from cityhealth.security.audit import REVEALED, Action, record, record_now
from cityhealth.security.dependencies import require
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Principal, Role, Scope
from tests.factories.security import headers_for, resident, staff
from tests.security import harness
from tests.security.support import PersonOnIndex, add_residents

Reader = Annotated[Principal, Depends(require(Scope.RESIDENT_READ))]


async def _events(database: Database) -> list[AuditEvent]:
    async with database.sessions() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all())


async def test_a_request_without_a_token_is_refused_and_audited(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me/sessions", headers={"X-Request-ID": "no-token-0001"})
    assert response.status_code == 401
    [event] = await _events(app.state.database)
    assert (event.actor, event.action, event.outcome, event.detail) == ("anonymous", "denied", "denied",
                                                                        "missing_token")
    assert event.request_id == "no-token-0001"
    assert event.source_address == "127.0.0.1"


async def test_a_missing_scope_is_refused_and_audited_with_the_caller(app: FastAPI,
                                                                      client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=5))
    response = await client.get("/api/security/clients", headers=headers)
    assert response.status_code == 403
    [event] = await _events(app.state.database)
    assert (event.actor, event.outcome, event.resource_id) == ("staff:5", "denied", "/api/security/clients")
    assert event.detail == "insufficient_scope: security.admin"


async def test_a_caller_holding_none_of_the_alternative_scopes_is_refused_and_audited(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=6))  # registry.read, no resident scope
    response = await client.get("/api/registry/residents/1", headers=headers)
    assert (response.status_code, response.json()["value"]) == (403, "resident.read resident.self")
    [event] = await _events(app.state.database)
    assert (event.actor, event.outcome) == ("staff:6", "denied")
    assert event.resource_id == "/api/registry/residents/{resident_id}"
    assert event.detail == "insufficient_scope: resident.read resident.self"


async def test_not_yours_looks_like_not_found_and_is_audited(app: FastAPI, client: httpx.AsyncClient) -> None:
    [mine, theirs] = await add_residents(app, 2)
    headers = await headers_for(app, resident(mine.id))
    response = await client.get(f"/api/registry/residents/{theirs.id}", headers=headers)
    missing = await client.get("/api/registry/residents/999999", headers=headers)
    assert response.status_code == missing.status_code == 404
    assert response.json()["code"] == missing.json()["code"]
    denials = [e for e in await _events(app.state.database) if e.outcome != "success"]
    assert [e.actor for e in denials] == ["resident-account:1"] * 2


async def test_an_event_records_who_on_whose_behalf_what_and_from_where(app: FastAPI) -> None:
    clock: SimulatedClock = app.state.clock
    principal = Principal(kind=staff(Role.HOTLINE_AGENT).kind, subject="staff:9", scopes=frozenset(),
                          organization_id=3, on_behalf_of="resident:41")
    async with app.state.database.transaction() as session:
        record(session, clock, principal, Action.SEARCH, "resident", resident_ids=[41, 42, 41])
    events = await _events(app.state.database)
    assert [(e.actor, e.on_behalf_of, e.organization_id, e.action, e.resident_id) for e in events] == [
        ("staff:9", "resident:41", 3, "search", 41), ("staff:9", "resident:41", 3, "search", 42)]
    assert all(e.occurred_at == clock.now() for e in events)


# --- Denials written from inside a request -----------------------------------------------------------


def _probe_router() -> APIRouter:
    router = APIRouter()

    @router.get("/api/probe/deny/{resident_id}")
    async def deny(resident_id: int, principal: Reader, session: SessionDep, clock: ClockDep,
                   database: DatabaseDep) -> None:
        await session.execute(text("SELECT id FROM residents WHERE id = :id"), {"id": resident_id})
        await record_now(database, clock, principal, Action.READ, "resident", resident_ids=[resident_id])
        raise NotFound("no such resident")

    @router.get("/api/probe/later")
    async def later(principal: Reader, clock: ClockDep, database: DatabaseDep,
                    background: BackgroundTasks) -> dict[str, str]:
        background.add_task(record_now, database, clock, principal, Action.EXPORT, "probe-background")
        return {"status": "accepted"}

    return router


async def test_record_now_after_the_response_is_written_at_once(app: FastAPI, client: httpx.AsyncClient,
                                                                database: Database) -> None:
    app.include_router(_probe_router())
    response = await client.get("/api/probe/later", headers=await headers_for(app, staff(Role.HOTLINE_SUPERVISOR)))
    assert response.status_code == 200
    assert [e.resource_type for e in await _events(database)] == ["probe-background"]


async def test_record_now_inside_a_request_neither_blocks_nor_is_lost(app: FastAPI, client: httpx.AsyncClient,
                                                                      database: Database) -> None:
    # On SQLite the request's transaction holds the write lock: an immediate write would wait 30 s.
    app.include_router(_probe_router())
    headers = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR))
    started = time.perf_counter()
    response = await client.get("/api/probe/deny/5", headers=headers)
    assert response.status_code == 404
    assert time.perf_counter() - started < 5
    [event] = [e for e in await _events(database) if e.resource_type == "resident"]
    assert (event.resident_id, event.outcome) == (5, "denied")


# --- The harness itself: it must catch what it is there to catch -------------------------------------


@pytest.fixture
async def bare_app(settings: Settings, database: Database, clock: SimulatedClock) -> AsyncIterator[FastAPI]:
    """An app outside the `app` fixture's watch, for tests that break the rules on purpose."""
    application = create_app(settings, database=database, clock=clock)
    router = APIRouter()

    @router.get("/api/probe/unaudited/{resident_id}")
    async def unaudited(resident_id: int, principal: Reader, session: SessionDep) -> dict[str, int]:
        await session.execute(text("SELECT name FROM residents WHERE id = :id"), {"id": resident_id})
        return {"resident_id": resident_id}

    @router.get("/api/probe/whole/{resident_id}")
    async def whole(resident_id: int, principal: Reader, session: SessionDep, clock: ClockDep,
                    revealed: bool = False) -> dict[str, str]:
        row = (await session.execute(text("SELECT id_number_enc FROM residents WHERE id = :id"),
                                     {"id": resident_id})).one()
        record(session, clock, principal, Action.READ, "resident", resident_ids=[resident_id],
               detail=REVEALED if revealed else None)
        from cityhealth.registry.protection import ID_NUMBER, cipher_for

        return {"id_number": cipher_for(application.state.settings).decrypt(ID_NUMBER, row[0])}

    application.include_router(router)
    async with application.router.lifespan_context(application):
        yield application


async def _watched_get(app: FastAPI, path: str, person: PersonOnIndex) -> harness.AppWatch:
    watch = harness.AppWatch(app, app.state.database, "probe")
    headers = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get(path.format(id=person.id), headers=headers)).status_code == 200
    watch.close()
    return watch


async def test_the_harness_catches_an_unaudited_read_of_personal_data(bare_app: FastAPI) -> None:
    [person] = await add_residents(bare_app, 1)
    watch = await _watched_get(bare_app, "/api/probe/unaudited/{id}", person)
    counted = harness.RECORD.unaudited
    try:
        with pytest.raises(AssertionError, match=r"GET /api/probe/unaudited/\d+ -> 200 read or wrote residents"):
            await watch.check()
    finally:
        harness.RECORD.unaudited = counted  # the deliberate miss is not one of the suite's


async def test_the_harness_catches_a_whole_id_number_in_a_response(bare_app: FastAPI) -> None:
    [person] = await add_residents(bare_app, 1)
    findings_before = list(harness.RECORD.findings)
    watch = await _watched_get(bare_app, "/api/probe/whole/{id}", person)
    try:
        with pytest.raises(AssertionError, match=r"carries a whole ID or phone number \(320102\*{8}"):
            await watch.check()
    finally:
        harness.RECORD.findings[:] = findings_before  # the deliberate leak must not fail the whole run


async def test_the_harness_accepts_a_whole_number_audited_as_revealed(bare_app: FastAPI) -> None:
    [person] = await add_residents(bare_app, 1)
    watch = await _watched_get(bare_app, "/api/probe/whole/{id}?revealed=true", person)
    await watch.check()


def test_the_log_scan_catches_a_careless_log_line() -> None:
    findings_before = list(harness.RECORD.findings)
    scanner = harness.LogScanner()
    try:
        record = logging.makeLogRecord({"name": "cityhealth.probe", "msg": "caller %s",
                                        "args": ("13812345678",)})
        scanner.emit(record)
        scanner.emit(logging.makeLogRecord({"name": "cityhealth.probe", "msg": "masked 138****5678"}))
        assert [f.masked for f in harness.RECORD.findings[len(findings_before):]] == ["138****5678"]
    finally:
        harness.RECORD.findings[:] = findings_before


@pytest.mark.parametrize(("text_value", "found"), [
    ("id 11010519491231002X here", ["110105********002X"]),  # the GB 11643 standard's own example
    ("id 110105194912310021", []),  # wrong check character: not an ID number
    ("masked 110105********002X", []),
    ("phone 13912345678.", ["139****5678"]),
    ("order 213912345678", []),  # twelve digits: not a mobile number
    ("hash a13912345678f", []),  # inside a hex string
    ("time 1655256600123", []),
])
def test_the_scan_recognises_whole_numbers_only(text_value: str, found: list[str]) -> None:
    assert harness.whole_personal_numbers(text_value) == found
