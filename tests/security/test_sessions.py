"""Sessions behind staff and resident tokens: idle timeout, logout, refresh, deactivation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.security.models import StaffSession
from cityhealth.security.principals import Role
from cityhealth.security.tokens import issue_access_token
from tests.factories.security import admin_headers, headers_for, resident, staff
from tests.security.support import add_residents, add_staff, bearer

IDLE_S = 120


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"staff_session_idle_timeout_s": IDLE_S})


async def _editor_token(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    response = await client.post("/api/auth/login", json={"username": "editor", "password": account.password})
    return bearer(response.json())


async def test_a_session_in_use_stays_alive(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    headers = await _editor_token(app, client)
    for _ in range(2):
        clock.advance(timedelta(seconds=IDLE_S - 10))
        assert (await client.get("/api/me/sessions", headers=headers)).status_code == 200


async def test_an_idle_session_expires(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    headers = await _editor_token(app, client)
    clock.advance(timedelta(seconds=IDLE_S + 1))
    response = await client.get("/api/me/sessions", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


async def test_last_seen_is_not_rewritten_on_every_request(app: FastAPI, client: httpx.AsyncClient,
                                                           clock: SimulatedClock) -> None:
    headers = await _editor_token(app, client)
    async with app.state.database.sessions() as session:
        opened = (await session.execute(select(StaffSession.last_seen_at))).scalar_one()
    clock.advance(timedelta(seconds=1))
    await client.get("/api/me/sessions", headers=headers)
    async with app.state.database.sessions() as session:
        assert (await session.execute(select(StaffSession.last_seen_at))).scalar_one() == opened
    clock.advance(timedelta(seconds=IDLE_S // 10))
    await client.get("/api/me/sessions", headers=headers)
    async with app.state.database.sessions() as session:
        assert (await session.execute(select(StaffSession.last_seen_at))).scalar_one() == clock.now()


async def test_logout_ends_every_token_of_the_session(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor_token(app, client)
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    response = await client.get("/api/me/sessions", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "session_ended"


async def test_refresh_renews_the_token_of_a_live_session(app: FastAPI, client: httpx.AsyncClient,
                                                          clock: SimulatedClock) -> None:
    headers = await _editor_token(app, client)
    clock.advance(timedelta(seconds=100))
    renewed = await client.post("/api/auth/refresh", headers=headers)
    assert renewed.status_code == 200, renewed.text
    old = jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})
    new = jwt.decode(renewed.json()["access_token"], options={"verify_signature": False})
    assert new["sid"] == old["sid"]
    assert new["exp"] > old["exp"]


async def test_refresh_of_an_idle_session_is_refused(app: FastAPI, client: httpx.AsyncClient,
                                                     clock: SimulatedClock) -> None:
    headers = await _editor_token(app, client)
    clock.advance(timedelta(seconds=IDLE_S + 1))
    response = await client.post("/api/auth/refresh", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "session_expired"


async def test_refresh_after_logout_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor_token(app, client)
    await client.post("/api/auth/logout", headers=headers)
    assert (await client.post("/api/auth/refresh", headers=headers)).status_code == 401


async def test_a_token_without_a_session_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    settings = app.state.settings
    token = issue_access_token(staff(Role.PLATFORM_ADMIN), key=settings.secret("token_signing_key"),
                               now=app.state.clock.now(), ttl_s=300)
    response = await client.get("/api/security/clients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "session_ended"


async def test_a_token_signed_with_another_key_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    token = issue_access_token(staff(Role.PLATFORM_ADMIN), key=b"k" * 32, now=app.state.clock.now(), ttl_s=300)
    response = await client.get("/api/security/clients", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


async def test_deactivating_a_user_ends_their_sessions(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    headers = bearer((await client.post("/api/auth/login", json={"username": "editor",
                                                                 "password": account.password})).json())
    response = await client.post(f"/api/security/staff/{account.id}/deactivate", headers=await admin_headers(app))
    assert response.status_code == 200
    assert (await client.get("/api/me/sessions", headers=headers)).status_code == 401
    relogin = await client.post("/api/auth/login", json={"username": "editor", "password": account.password})
    assert relogin.status_code == 401


async def test_the_owner_lists_and_ends_their_own_sessions(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    login = {"username": "editor", "password": account.password}
    first = bearer((await client.post("/api/auth/login", json=login)).json())
    second = bearer((await client.post("/api/auth/login", json=login)).json())
    listed = (await client.get("/api/me/sessions", headers=first)).json()
    assert len(listed) == 2
    other = next(item["id"] for item in listed if not item["is_current"])
    assert (await client.delete(f"/api/me/sessions/{other}", headers=first)).status_code == 204
    assert (await client.get("/api/me/sessions", headers=second)).status_code == 401
    assert (await client.get("/api/me/sessions", headers=first)).status_code == 200


async def test_a_resident_session_dies_with_logout_too(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    headers = await headers_for(app, resident(person.id))
    assert (await client.get("/api/me/access-log", headers=headers)).status_code == 200
    await client.post("/api/auth/logout", headers=headers)
    assert (await client.get("/api/me/access-log", headers=headers)).status_code == 401
