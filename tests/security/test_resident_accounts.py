"""Resident accounts: real-name registration against the master index, 3 per phone, login, access log."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.registry.models import Resident
from cityhealth.security.models import AuditEvent, ResidentAccount
from cityhealth.security.principals import Role, Scope
from tests.factories.security import headers_for, machine, resident, staff
from tests.security.support import PersonOnIndex, add_organizations, add_residents, bearer

PASSWORD = "resident-pass-1"


def _registration(person: PersonOnIndex, **overrides: str) -> dict[str, str]:
    return {"id_number": person.id_number, "name": person.name, "phone": "13812345678",
            "password": PASSWORD} | overrides


async def _events(app: FastAPI, **criteria: object) -> list[AuditEvent]:
    async with app.state.database.sessions() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in criteria.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list((await session.execute(query)).scalars().all())


async def test_matching_id_number_and_name_open_an_account(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    response = await client.post("/api/auth/residents/register", json=_registration(person))
    assert response.status_code == 201, response.text
    assert response.json() == {"account_id": response.json()["account_id"], "resident_id": person.id,
                               "phone": "138****5678"}
    [event] = await _events(app, action="create", resource_type="resident_account")
    assert (event.resident_id, event.outcome) == (person.id, "success")


async def test_a_name_that_does_not_match_is_refused_and_the_resident_sees_the_attempt(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    response = await client.post("/api/auth/residents/register", json=_registration(person, name="冒名者"))
    assert response.status_code == 422
    assert response.json()["code"] == "real_name_check_failed"
    [event] = await _events(app, resource_type="resident_account")
    assert (event.resident_id, event.outcome, event.detail) == (person.id, "denied", "real_name_mismatch")


async def test_an_unknown_id_number_gets_the_same_answer_as_a_wrong_name(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    [person, stranger] = await add_residents(app, 2)
    async with app.state.database.transaction() as session:
        await session.delete(await session.get(Resident, stranger.id))
    wrong_name = await client.post("/api/auth/residents/register", json=_registration(person, name="冒名者"))
    unknown = await client.post("/api/auth/residents/register", json=_registration(stranger))
    assert wrong_name.status_code == unknown.status_code == 422
    assert wrong_name.json()["detail"] == unknown.json()["detail"]


async def test_a_malformed_id_number_is_named_masked(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    broken = person.id_number[:-1] + ("0" if person.id_number[-1] != "0" else "1")
    response = await client.post("/api/auth/residents/register", json=_registration(person, id_number=broken))
    assert response.status_code == 422
    assert response.json()["rule"] == "id_number.check_char"
    assert broken not in response.text
    assert f"{broken[:6]}********{broken[-4:]}" in response.text


async def test_one_phone_number_holds_at_most_three_accounts(app: FastAPI, client: httpx.AsyncClient) -> None:
    people = await add_residents(app, 4)
    for person in people[:3]:
        assert (await client.post("/api/auth/residents/register", json=_registration(person))).status_code == 201
    fourth = await client.post("/api/auth/residents/register", json=_registration(people[3]))
    assert fourth.status_code == 409
    assert fourth.json()["code"] == "phone_account_limit"
    assert "13812345678" not in fourth.text
    other_phone = await client.post("/api/auth/residents/register",
                                    json=_registration(people[3], phone="13900000000"))
    assert other_phone.status_code == 201


async def test_a_resident_has_one_account(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    await client.post("/api/auth/residents/register", json=_registration(person))
    again = await client.post("/api/auth/residents/register", json=_registration(person, phone="13900000000"))
    assert again.status_code == 409
    assert again.json()["code"] == "account_exists"
    async with app.state.database.sessions() as session:
        assert len((await session.execute(select(ResidentAccount))).scalars().all()) == 1


async def test_phone_numbers_of_accounts_are_encrypted_at_rest(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    await client.post("/api/auth/residents/register", json=_registration(person))
    async with app.state.database.sessions() as session:
        account = (await session.execute(select(ResidentAccount))).scalar_one()
    assert "13812345678" not in account.phone_enc + account.phone_hash


async def test_a_resident_logs_in_with_id_number_and_password(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    await client.post("/api/auth/residents/register", json=_registration(person))
    response = await client.post("/api/auth/residents/login",
                                 json={"id_number": person.id_number, "password": PASSWORD})
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["rid"] == person.id
    assert claims["sid"]
    assert "resident.self" in claims["scope"]


async def test_a_resident_account_locks_after_repeated_failures(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    await client.post("/api/auth/residents/register", json=_registration(person))
    for _ in range(app.state.settings.login_max_failures):
        wrong = await client.post("/api/auth/residents/login", json={"id_number": person.id_number,
                                                                     "password": "guess-guess"})
        assert wrong.status_code == 401
    locked = await client.post("/api/auth/residents/login", json={"id_number": person.id_number,
                                                                  "password": PASSWORD})
    assert locked.status_code == 401
    assert locked.json()["code"] == "invalid_credentials"


# --- The access log ------------------------------------------------------------------------------------


async def test_the_access_log_shows_who_read_the_record_by_kind_and_organization(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    [hospital] = await add_organizations(app, 1)
    agent = await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, organization_id=hospital, user_id=7))
    his = await headers_for(app, machine(Scope.RESIDENT_READ, organization_id=hospital, client_id="his-x"))
    assert (await client.get(f"/api/registry/residents/{person.id}", headers=agent)).status_code == 200
    assert (await client.get(f"/api/registry/residents/{person.id}", headers=his)).status_code == 200
    own = await headers_for(app, resident(person.id))
    log = await client.get("/api/me/access-log", headers=own)
    assert log.status_code == 200, log.text
    accessors = [(item["action"], item["accessor"]["kind"], item["accessor"]["description"])
                 for item in log.json()["items"]]
    organization = log.json()["items"][0]["accessor"]["organization"]
    assert accessors == [("read", "client", f"information system of {organization}"),
                         ("read", "staff", f"staff of {organization}")]
    assert "staff:7" not in log.text
    assert "his-x" not in log.text


async def test_reading_the_access_log_is_itself_logged(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    own = await headers_for(app, resident(person.id))
    await client.get("/api/me/access-log", headers=own)
    second = await client.get("/api/me/access-log", headers=own)
    assert [(i["resource_type"], i["accessor"]["description"]) for i in second.json()["items"]] == [
        ("access_log", "you")]


async def test_the_access_log_pages_backwards(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    own = await headers_for(app, resident(person.id))
    for _ in range(4):
        await client.get("/api/me/access-log", headers=own)
    first = (await client.get("/api/me/access-log", params={"limit": 2}, headers=own)).json()
    second = (await client.get("/api/me/access-log", params={"limit": 2, "before": first["next_before"]},
                               headers=own)).json()
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


async def test_staff_have_no_access_log_of_their_own(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await headers_for(app, staff(Role.PLATFORM_ADMIN))
    assert (await client.get("/api/me/access-log", headers=headers)).status_code == 403


async def test_a_registered_resident_logs_in_and_reads_their_log(app: FastAPI, client: httpx.AsyncClient) -> None:
    [person] = await add_residents(app, 1)
    await client.post("/api/auth/residents/register", json=_registration(person))
    login = await client.post("/api/auth/residents/login", json={"id_number": person.id_number, "password": PASSWORD})
    log = await client.get("/api/me/access-log", headers=bearer(login.json()))
    actions = [item["action"] for item in log.json()["items"]]
    assert actions[-2:] == ["login", "create"]
