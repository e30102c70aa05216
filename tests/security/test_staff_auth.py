"""Staff login: argon2 passwords, TOTP for roles that read personal data in bulk or administer, lockout."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.security.credentials import totp_code
from cityhealth.security.models import AuditEvent, StaffUser
from cityhealth.security.principals import SECOND_FACTOR_ROLES, Role
from tests.factories.security import admin_headers
from tests.security.support import StaffAccount, add_staff, bearer


async def _login(client: httpx.AsyncClient, account: StaffAccount, *, password: str | None = None,
                 totp: str | None = None) -> httpx.Response:
    body = {"username": account.username, "password": password or account.password}
    if totp is not None:
        body["totp"] = totp
    return await client.post("/api/auth/login", json=body)


async def test_passwords_are_stored_as_argon2id(app: FastAPI) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    async with app.state.database.sessions() as session:
        stored = (await session.get(StaffUser, account.id)).password_hash  # type: ignore[union-attr]
    assert stored.startswith("$argon2id$")
    assert account.password not in stored


def test_every_role_that_reads_in_bulk_or_administers_needs_a_second_factor() -> None:
    assert frozenset(Role) - SECOND_FACTOR_ROLES == {Role.RESIDENT, Role.BULLETIN_EDITOR}


async def test_a_role_without_second_factor_logs_in_with_its_password(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    assert account.totp_secret is None
    response = await _login(client, account)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"staff:{account.id}"
    assert claims["roles"] == ["bulletin_editor"]
    assert claims["sid"]
    assert response.json()["expires_in"] <= 300


async def test_a_second_factor_role_is_told_a_code_is_required(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    response = await _login(client, account)
    assert response.status_code == 401
    assert response.json()["code"] == "totp_required"


async def test_a_second_factor_role_logs_in_with_a_current_code(app: FastAPI, client: httpx.AsyncClient,
                                                               clock: SimulatedClock) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    assert account.totp_secret is not None
    response = await _login(client, account, totp=totp_code(account.totp_secret, clock.now()))
    assert response.status_code == 200, response.text
    async with app.state.database.sessions() as session:
        user = await session.get(StaffUser, account.id)
    assert user is not None
    assert user.totp_confirmed_at == clock.now()


async def test_a_code_from_the_previous_step_is_tolerated(app: FastAPI, client: httpx.AsyncClient,
                                                         clock: SimulatedClock) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    assert account.totp_secret is not None
    code = totp_code(account.totp_secret, clock.now())
    clock.advance(timedelta(seconds=30))
    assert (await _login(client, account, totp=code)).status_code == 200


async def test_a_wrong_or_old_code_is_refused(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    assert account.totp_secret is not None
    stale = totp_code(account.totp_secret, clock.now() - timedelta(minutes=5))
    assert (await _login(client, account, totp=stale)).json()["code"] == "invalid_credentials"
    assert (await _login(client, account, totp="000000")).status_code == 401


async def test_a_code_is_accepted_only_once(app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    assert account.totp_secret is not None
    code = totp_code(account.totp_secret, clock.now())
    assert (await _login(client, account, totp=code)).status_code == 200
    replay = await _login(client, account, totp=code)
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_credentials"


async def test_unknown_user_and_wrong_password_get_the_same_answer(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    wrong = await _login(client, account, password="not the password")
    unknown = await client.post("/api/auth/login", json={"username": "nobody", "password": "whatever"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_repeated_failures_lock_the_account_until_the_lockout_ends(
        app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    for _ in range(app.state.settings.login_max_failures):
        assert (await _login(client, account, password="guess")).status_code == 401
    assert (await _login(client, account)).status_code == 401  # the right password, but locked
    clock.advance(timedelta(seconds=app.state.settings.login_lockout_s + 1))
    assert (await _login(client, account)).status_code == 200


async def test_an_administrator_can_lift_a_lockout(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    for _ in range(app.state.settings.login_max_failures):
        await _login(client, account, password="guess")
    response = await client.post(f"/api/security/staff/{account.id}/unlock", headers=await admin_headers(app))
    assert response.status_code == 200
    assert (await _login(client, account)).status_code == 200


async def test_logins_and_refusals_are_audited(app: FastAPI, client: httpx.AsyncClient) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    await _login(client, account, password="guess")
    await _login(client, account)
    async with app.state.database.sessions() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "login")
                                        .order_by(AuditEvent.id))).scalars().all()
    assert [(e.actor, e.outcome, e.detail) for e in events] == [
        (f"staff:{account.id}", "denied", "bad_password"), (f"staff:{account.id}", "success", None)]
    assert all(e.source_address == "127.0.0.1" and e.request_id for e in events)


async def test_a_password_never_appears_in_an_error(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/security/staff", headers=await admin_headers(app), json={
        "username": "shorty", "display_name": "S", "password": "tiny-secret", "roles": ["bulletin_editor"]})
    assert response.status_code == 422
    assert response.json()["rule"] == "password.min_length"
    assert "tiny-secret" not in response.text


async def test_a_user_of_an_unknown_organization_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/security/staff", headers=await admin_headers(app), json={
        "username": "clerk", "display_name": "C", "password": "a long enough password",
        "roles": ["bulletin_editor"], "organization_id": 424242})
    assert response.status_code == 422
    problem = response.json()
    assert (problem["field"], problem["value"], problem["rule"]) == ("organization_id", 424242, "organization.exists")
    async with app.state.database.sessions() as session:
        assert (await session.execute(select(StaffUser).where(StaffUser.username == "clerk"))).first() is None


# --- Second-factor enrolment ---------------------------------------------------------------------------


async def test_an_administrator_creates_a_user_and_gets_the_enrolment_uri_once(
        app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock) -> None:
    response = await client.post("/api/security/staff", headers=await admin_headers(app), json={
        "username": "doctor.li", "display_name": "李医生", "password": "a long enough password",
        "roles": ["reading_centre_doctor"]})
    assert response.status_code == 201, response.text
    uri = response.json()["totp_provisioning_uri"]
    assert uri.startswith("otpauth://totp/cityhealth:doctor.li")
    code = totp_code(pyotp.parse_uri(uri).secret, clock.now())
    login = await client.post("/api/auth/login", json={"username": "doctor.li", "password": "a long enough password",
                                                       "totp": code})
    assert login.status_code == 200
    listed = await client.get("/api/security/staff", headers=await admin_headers(app))
    assert "totp" not in listed.text.replace("has_second_factor", "")


async def test_a_user_enrols_an_authenticator_and_then_needs_it(app: FastAPI, client: httpx.AsyncClient,
                                                                clock: SimulatedClock) -> None:
    account = await add_staff(app, "editor", Role.BULLETIN_EDITOR)
    headers = bearer((await _login(client, account)).json())
    started = await client.post("/api/auth/totp/enrol", headers=headers, json={})
    secret = pyotp.parse_uri(started.json()["provisioning_uri"]).secret
    assert (await client.post("/api/auth/totp/confirm", headers=headers, json={"code": "123456"})).status_code == 422
    confirmed = await client.post("/api/auth/totp/confirm", headers=headers,
                                  json={"code": totp_code(secret, clock.now())})
    assert confirmed.status_code == 204
    clock.advance(timedelta(seconds=30))
    assert (await _login(client, account)).json()["code"] == "totp_required"
    assert (await _login(client, account, totp=totp_code(secret, clock.now()))).status_code == 200


async def test_replacing_an_enrolled_factor_needs_a_code_from_it(app: FastAPI, client: httpx.AsyncClient,
                                                                 clock: SimulatedClock) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    assert account.totp_secret is not None
    headers = bearer((await _login(client, account, totp=totp_code(account.totp_secret, clock.now()))).json())
    refused = await client.post("/api/auth/totp/enrol", headers=headers, json={})
    assert refused.status_code == 422
    clock.advance(timedelta(seconds=30))
    allowed = await client.post("/api/auth/totp/enrol", headers=headers,
                                json={"current_code": totp_code(account.totp_secret, clock.now())})
    assert allowed.status_code == 200


async def test_totp_secrets_are_encrypted_at_rest(app: FastAPI) -> None:
    account = await add_staff(app, "agent", Role.HOTLINE_AGENT)
    async with app.state.database.sessions() as session:
        user = await session.get(StaffUser, account.id)
    assert user is not None
    assert user.totp_secret_enc is not None
    assert account.totp_secret is not None
    assert account.totp_secret not in user.totp_secret_enc


@pytest.mark.parametrize("role", sorted(SECOND_FACTOR_ROLES))
async def test_no_second_factor_role_can_log_in_with_a_password_alone(
        app: FastAPI, client: httpx.AsyncClient, role: Role) -> None:
    account = await add_staff(app, f"user-{role.value}", role)
    assert (await _login(client, account)).status_code == 401
