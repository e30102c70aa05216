"""Failed authentication on any route: limited per source address, recorded in bounded form."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from cityhealth import queue
from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.models import AuditEvent, AuthFailureWindow
from cityhealth.security.principals import Role
from cityhealth.security.tasks import purge_auth_failures
from tests.factories.security import headers_for, resident, staff
from tests.security.support import ClientKey, add_residents, assertion, register, token_form

LIMIT = 5
FORGED = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdGFmZjoxIn0.forged"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_failures_per_minute": LIMIT})


def _client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)),
                             base_url="http://testserver")


async def _audit_rows(database: Database) -> int:
    async with database.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


async def _windows(database: Database) -> list[AuthFailureWindow]:
    async with database.sessions() as session:
        query = select(AuthFailureWindow).order_by(AuthFailureWindow.source_address, AuthFailureWindow.window_start)
        return list((await session.execute(query)).scalars().all())


async def test_a_thousand_anonymous_401s_from_one_address_add_at_most_two_audit_rows(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    statuses = [(await client.get("/api/me/sessions", headers=FORGED)).status_code for _ in range(1000)]
    assert statuses == [401] * LIMIT + [429] * (1000 - LIMIT)
    # One event for the address's first failure in the window, one for its first refusal by the limit.
    assert await _audit_rows(app.state.database) == 2


async def test_failures_beyond_the_limit_get_a_429_problem_with_retry_after(client: httpx.AsyncClient) -> None:
    for _ in range(LIMIT):
        await client.get("/api/me/sessions")
    refused = await client.get("/api/me/sessions")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["rule"] == "auth_failures_per_address"


async def test_every_kind_of_failed_bearer_token_counts(app: FastAPI, client: httpx.AsyncClient,
                                                        clock: SimulatedClock) -> None:
    expired = await headers_for(app, staff(Role.PLATFORM_ADMIN))
    clock.advance(timedelta(hours=1))
    attempts = [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer not-a-jwt"}, FORGED,
                expired]
    statuses = [(await client.get("/api/me/sessions", headers=headers)).status_code for headers in attempts]
    assert statuses == [401] * LIMIT
    assert (await client.get("/api/me/sessions")).status_code == 429


async def test_another_address_is_unaffected(app: FastAPI, client: httpx.AsyncClient) -> None:
    for _ in range(LIMIT + 3):
        await client.get("/api/me/sessions", headers=FORGED)
    async with _client_from(app, "10.9.9.9") as other:
        assert (await other.get("/api/me/sessions", headers=FORGED)).status_code == 401


async def test_successful_requests_do_not_count(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.PLATFORM_ADMIN))
    statuses = [(await client.get("/api/me/sessions", headers=headers)).status_code for _ in range(3 * LIMIT)]
    assert statuses == [200] * (3 * LIMIT)


async def test_an_address_over_the_limit_is_refused_before_its_token_is_checked(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.PLATFORM_ADMIN))
    for _ in range(LIMIT):
        await client.get("/api/me/sessions", headers=FORGED)
    assert (await client.get("/api/me/sessions", headers=headers)).status_code == 429


async def test_failures_are_counted_per_address_and_window(app: FastAPI, client: httpx.AsyncClient,
                                                           clock: SimulatedClock) -> None:
    for _ in range(LIMIT + 7):
        await client.get("/api/me/sessions", headers=FORGED)
    [window] = await _windows(app.state.database)
    assert (window.source_address, window.failures, window.rate_limited) == ("127.0.0.1", LIMIT, 7)
    assert window.window_start == clock.now().replace(minute=0, second=0, microsecond=0)
    assert window.last_detail == "rate_limited"


async def test_the_first_failure_of_a_window_is_audited_with_its_detail(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/api/me/sessions", headers={"X-Request-ID": "flood-0001"})
    async with app.state.database.sessions() as session:
        [event] = (await session.execute(select(AuditEvent))).scalars().all()
    assert (event.actor, event.action, event.outcome, event.source_address, event.request_id) == (
        "anonymous", "denied", "denied", "127.0.0.1", "flood-0001")
    assert event.detail == "missing_token"


async def test_a_new_window_audits_its_first_failure_again(app: FastAPI, client: httpx.AsyncClient,
                                                           clock: SimulatedClock) -> None:
    await client.get("/api/me/sessions")
    await client.get("/api/me/sessions")
    clock.advance(timedelta(hours=1))
    await client.get("/api/me/sessions")
    assert await _audit_rows(app.state.database) == 2
    assert [w.failures for w in await _windows(app.state.database)] == [2, 1]


async def test_bad_client_assertions_count_as_failed_authentication(app: FastAPI,
                                                                    client: httpx.AsyncClient) -> None:
    key = ClientKey.es384()
    await register(app, "his-a", key)
    before = await _audit_rows(app.state.database)
    statuses = []
    for _ in range(LIMIT + 2):
        signed = assertion(key, app, "his-a", aud="http://evil.example/api/auth/token")
        statuses.append((await client.post("/api/auth/token", data=token_form(signed))).status_code)
    assert statuses == [401] * LIMIT + [429] * 2
    assert await _audit_rows(app.state.database) - before == 2


async def test_an_authenticated_personal_data_read_is_still_audited(app: FastAPI) -> None:
    [person] = await add_residents(app, 1)
    async with _client_from(app, "10.0.0.66") as flood:
        for _ in range(LIMIT + 3):
            await flood.get("/api/me/sessions", headers=FORGED)
    headers = await headers_for(app, resident(person.id))
    async with _client_from(app, "10.0.0.77") as reader:
        response = await reader.get(f"/api/registry/residents/{person.id}", headers=headers)
    assert response.status_code == 200
    async with app.state.database.sessions() as session:
        reads = (await session.execute(select(AuditEvent).where(AuditEvent.action == "read"))).scalars().all()
    assert [(e.resident_id, e.outcome) for e in reads] == [(person.id, "success")]


async def test_an_authenticated_callers_denials_are_each_audited(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.BULLETIN_EDITOR, user_id=5))
    for _ in range(LIMIT + 2):
        assert (await client.get("/api/security/clients", headers=headers)).status_code == 403
    async with app.state.database.sessions() as session:
        denials = (await session.execute(select(AuditEvent).where(AuditEvent.actor == "staff:5"))).scalars().all()
    assert len(denials) == LIMIT + 2


async def test_the_audit_chain_verifies_after_a_flood(app: FastAPI, client: httpx.AsyncClient,
                                                      clock: SimulatedClock) -> None:
    for hour in range(3):
        for _ in range(LIMIT + 2):
            await client.get("/api/me/sessions", headers=FORGED)
        clock.advance(timedelta(hours=1, minutes=hour))
    verification = await verify_chain(app.state.database)
    assert verification.problem is None
    assert verification.checked == await _audit_rows(app.state.database) <= 2 * 3


async def test_workers_sharing_redis_share_an_addresss_failures(settings: Settings, database: Database,
                                                                 clock: SimulatedClock) -> None:
    shared = settings.model_copy(update={"rate_limit_storage_url": "redis://127.0.0.1:6379"})
    first, second = (create_app(shared, database=database, clock=clock) for _ in range(2))
    # A fresh address per run: the Redis server outlives the test, and other runs use it too.
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    async with _client_from(first, address) as worker_a, _client_from(second, address) as worker_b:
        statuses = [(await worker_a.get("/api/me/sessions")).status_code for _ in range(LIMIT)]
        refused = await worker_b.get("/api/me/sessions")
    assert statuses == [401] * LIMIT
    assert refused.status_code == 429


async def test_the_hourly_purge_forgets_failure_counters_past_the_retention_only(
        app: FastAPI, client: httpx.AsyncClient, settings: Settings, clock: SimulatedClock) -> None:
    await client.get("/api/me/sessions", headers=FORGED)
    clock.advance(timedelta(days=settings.auth_failure_retention_days))
    await client.get("/api/me/sessions", headers=FORGED)
    database = app.state.database
    assert len(await _windows(database)) == 2
    clock.advance(timedelta(hours=2))
    purged = await purge_auth_failures(queue.Runtime(settings, database, clock))
    assert purged == 1
    [kept] = await _windows(database)
    assert kept.window_start > clock.now() - timedelta(days=settings.auth_failure_retention_days)
    assert await _audit_rows(database) == 2  # the audit events of both windows stay
