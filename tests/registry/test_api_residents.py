"""Registry API: residents, the master patient index — validation, uniqueness, masking, audit."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.factories.registry import audit_events, count, resident_id, resident_payload, seed_areas
from tests.factories.security import admin_headers, headers_for, machine, staff
from tests.factories.security import resident as resident_principal

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import Sex, make_resident_id, mask_resident_id
from cityhealth.registry.models import Resident
from cityhealth.security.principals import Role, Scope

RESIDENTS = "/api/registry/residents"


@pytest.fixture(autouse=True)
async def areas(database: Database, clock: SimulatedClock) -> None:
    await seed_areas(database, clock)


@pytest.fixture
async def admin(app: FastAPI) -> dict[str, str]:
    return await admin_headers(app)


@pytest.fixture
async def agent(app: FastAPI) -> dict[str, str]:
    """A staff reader of the resident index who may not reveal (a hotline supervisor)."""
    return await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=7))


async def _register(client: httpx.AsyncClient, headers: dict[str, str], **payload: Any) -> dict[str, Any]:
    response = await client.post(RESIDENTS, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: httpx.Response, status: int, code: str, field: str, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["code"], body["field"], body["rule"]) == (code, field, rule)
    return body


# --- Registration and validation ----------------------------------------------------------------------


async def test_registration_answers_with_masked_numbers_only(client: httpx.AsyncClient,
                                                             admin: dict[str, str]) -> None:
    payload = resident_payload(1, phone="13912345678")
    response = await client.post(RESIDENTS, json=payload, headers=admin)
    assert response.status_code == 201
    body = response.json()
    assert body["id_number_masked"] == mask_resident_id(payload["id_number"])
    assert body["phone_masked"] == "139****5678"
    assert payload["id_number"] not in response.text
    assert "13912345678" not in response.text
    assert "id_number" not in body
    assert "phone" not in body


async def test_sex_and_birth_date_default_to_the_id_numbers(client: httpx.AsyncClient,
                                                            admin: dict[str, str]) -> None:
    number = resident_id(2, sex=Sex.FEMALE, birth_date=date(1990, 12, 31))
    body = await _register(client, admin, id_number=number, name="王芳")
    assert (body["sex"], body["birth_date"]) == (2, "1990-12-31")


async def test_the_database_holds_neither_number_in_clear(client: httpx.AsyncClient, admin: dict[str, str],
                                                          database: Database) -> None:
    payload = resident_payload(3, phone="13800001111")
    await _register(client, admin, **payload)
    async with database.sessions() as session:
        row = (await session.scalars(select(Resident))).one()
    stored = " ".join(str(v) for v in (row.id_number_hash, row.id_number_enc, row.phone_hash, row.phone_enc))
    assert payload["id_number"] not in stored
    assert "13800001111" not in stored


async def test_a_fifteen_digit_number_is_stored_as_eighteen(client: httpx.AsyncClient,
                                                            admin: dict[str, str]) -> None:
    eighteen = make_resident_id("320102", date(1965, 4, 1), 123, Sex.MALE)
    fifteen = eighteen[:6] + eighteen[8:17]
    body = await _register(client, admin, id_number=fifteen, name="老张")
    assert body["id_number_masked"] == mask_resident_id(eighteen)
    found = await client.post(f"{RESIDENTS}/lookup", json={"id_number": eighteen}, headers=admin)
    assert found.json()["id"] == body["id"]


async def test_an_obsolete_area_code_in_the_number_is_accepted(client: httpx.AsyncClient,
                                                               admin: dict[str, str]) -> None:
    # 320103 白下区 was merged into 秦淮区 in 2013; numbers issued under it stay valid.
    number = make_resident_id("320103", date(1970, 5, 5), 11, Sex.MALE)
    payload = resident_payload(4) | {"id_number": number, "birth_date": "1970-05-05"}
    assert (await client.post(RESIDENTS, json=payload, headers=admin)).status_code == 201


def _wrong_check_char(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


@pytest.mark.parametrize(("id_number", "rule"), [
    (_wrong_check_char(resident_id(5)), "id_number.check_char"),
    (resident_id(5)[:16], "id_number.length"),
    ("32010219850314A11X", "id_number.charset"),
], ids=["check-char", "length", "charset"])
async def test_malformed_id_number_is_422_with_masked_value_and_nothing_written(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, id_number: str, rule: str) -> None:
    response = await client.post(RESIDENTS, json=resident_payload(5, id_number=id_number), headers=admin)
    body = _problem(response, 422, "validation_failed", "id_number", rule)
    assert body["value"] == mask_resident_id(id_number)
    assert id_number not in response.text
    assert await count(database, Resident) == 0


@pytest.mark.parametrize(("first17", "rule"), [
    ("32010219850231011", "id_number.birth_date"),
    ("99010219850314011", "id_number.area_code"),
    ("32010220300314011", "id_number.birth_date"),
], ids=["no-such-day", "no-such-province", "born-in-the-future"])
async def test_number_with_a_valid_check_char_but_impossible_content_is_422(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, first17: str, rule: str) -> None:
    from cityhealth.registry.identifiers import resident_id_check_char

    number = first17 + resident_id_check_char(first17)
    response = await client.post(RESIDENTS, json={"id_number": number, "name": "某"}, headers=admin)
    _problem(response, 422, "validation_failed", "id_number", rule)
    assert number not in response.text
    assert await count(database, Resident) == 0


async def test_a_number_sent_as_a_json_number_is_checked_not_echoed(client: httpx.AsyncClient,
                                                                    admin: dict[str, str]) -> None:
    bad = int(_wrong_check_char(resident_id(5)))
    response = await client.post(RESIDENTS, json={"id_number": bad, "name": "某"}, headers=admin)
    assert response.status_code == 422
    assert str(bad) not in response.text


@pytest.mark.parametrize(("overrides", "rule"), [
    ({"sex": 2}, "id_number.sex_mismatch"),
    ({"birth_date": "1985-03-15"}, "id_number.birth_date_mismatch"),
])
async def test_record_contradicting_its_id_number_is_422(client: httpx.AsyncClient, admin: dict[str, str],
                                                         database: Database, overrides: dict[str, Any],
                                                         rule: str) -> None:
    payload = resident_payload(6, sex=Sex.MALE) | overrides
    response = await client.post(RESIDENTS, json=payload, headers=admin)
    body = _problem(response, 422, "validation_failed", "id_number", rule)
    assert body["value"] == mask_resident_id(payload["id_number"])
    assert await count(database, Resident) == 0


@pytest.mark.parametrize("sex", [0, 9])
async def test_unknown_or_unstated_sex_is_not_compared(client: httpx.AsyncClient, admin: dict[str, str],
                                                       sex: int) -> None:
    body = await _register(client, admin, **resident_payload(7, sex=Sex.MALE) | {"sex": sex})
    assert body["sex"] == sex


async def test_second_resident_with_the_same_number_is_409_and_not_written(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database) -> None:
    number = make_resident_id("320102", date(1965, 4, 1), 123, Sex.MALE)
    await _register(client, admin, id_number=number, name="张三")
    again = await client.post(RESIDENTS, json={"id_number": number[:6] + number[8:17], "name": "张三"},
                              headers=admin)
    body = _problem(again, 409, "resident_exists", "id_number", "resident.unique_id_number")
    assert body["value"] == mask_resident_id(number)
    assert number not in again.text
    assert await count(database, Resident) == 1
    refusals = await audit_events(database, action="create", outcome="failure")
    assert [e.detail for e in refusals] == ["refused: resident_exists"]


async def test_concurrent_registrations_of_one_number_create_exactly_one(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database) -> None:
    payload = resident_payload(40)
    responses = await asyncio.gather(*(client.post(RESIDENTS, json=payload, headers=admin) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"resident_exists"}
    assert await count(database, Resident) == 1


@pytest.mark.parametrize(("overrides", "field", "rule", "value"), [
    ({"address_area_code": "999999"}, "address_area_code", "area.unknown", "999999"),
    ({"phone": "1391234567"}, "phone", "phone.format", "139***4567"),
    ({"sex": 3}, "sex", "sex.code", 3),
    ({"name": " "}, "name", "string_too_short", " "),
    ({"id_number": None}, "id_number", "string_type", None),
], ids=["area", "phone", "sex", "blank-name", "null-id"])
async def test_other_bad_fields_are_422_naming_field_and_rule(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, overrides: dict[str, Any],
        field: str, rule: str, value: object) -> None:
    response = await client.post(RESIDENTS, json=resident_payload(8) | overrides, headers=admin)
    body = _problem(response, 422, "validation_failed", field, rule)
    assert body.get("value") == value
    assert await count(database, Resident) == 0


# --- Reading, searching, revealing --------------------------------------------------------------------


async def test_lookup_finds_by_number_in_the_body_and_is_audited(client: httpx.AsyncClient, admin: dict[str, str],
                                                                 agent: dict[str, str], database: Database) -> None:
    payload = resident_payload(9)
    created = await _register(client, admin, **payload)
    response = await client.post(f"{RESIDENTS}/lookup", json={"id_number": payload["id_number"]}, headers=agent)
    assert response.status_code == 200
    assert response.json()["id"] == created["id"]
    assert payload["id_number"] not in response.text
    events = await audit_events(database, resident_id=created["id"], action="search")
    assert [(e.actor, e.outcome) for e in events] == [("staff:7", "success")]


async def test_lookup_of_an_unregistered_number_is_404_and_audited(client: httpx.AsyncClient,
                                                                   agent: dict[str, str], database: Database) -> None:
    number = resident_id(10)
    response = await client.post(f"{RESIDENTS}/lookup", json={"id_number": number}, headers=agent)
    assert response.status_code == 404
    assert response.json()["code"] == "resident_not_found"
    assert number not in response.text
    events = await audit_events(database, action="search", outcome="failure")
    assert [(e.actor, e.resident_id) for e in events] == [("staff:7", None)]
    assert number not in (events[0].detail or "")


async def test_get_is_masked_and_audited(client: httpx.AsyncClient, admin: dict[str, str], agent: dict[str, str],
                                         database: Database) -> None:
    payload = resident_payload(11)
    created = await _register(client, admin, **payload)
    response = await client.get(f"{RESIDENTS}/{created['id']}", headers=agent)
    assert response.status_code == 200
    assert payload["id_number"] not in response.text
    assert payload["phone"] not in response.text
    reads = await audit_events(database, resident_id=created["id"], action="read")
    assert [(e.actor, e.outcome, e.detail) for e in reads] == [("staff:7", "success", None)]


async def test_platform_admin_reveal_shows_whole_numbers_and_is_audited(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database) -> None:
    payload = resident_payload(12)
    created = await _register(client, admin, **payload)
    response = await client.get(f"{RESIDENTS}/{created['id']}", params={"reveal": "true"}, headers=admin)
    assert response.status_code == 200
    assert (response.json()["id_number"], response.json()["phone"]) == (payload["id_number"], payload["phone"])
    reads = await audit_events(database, resident_id=created["id"], action="read")
    assert [e.detail for e in reads] == ["revealed"]


async def test_hotline_agents_cannot_browse_the_resident_index_outside_a_call(
        client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str]) -> None:
    created = await _register(client, admin, **resident_payload(16))
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=8))
    response = await client.get(f"{RESIDENTS}/{created['id']}", headers=agent)
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert (await client.post(f"{RESIDENTS}/lookup", json={"id_number": resident_payload(16)["id_number"]},
                              headers=agent)).status_code == 403


async def test_reveal_by_a_hotline_supervisor_is_refused_and_the_refusal_audited(
        client: httpx.AsyncClient, admin: dict[str, str], agent: dict[str, str], database: Database) -> None:
    payload = resident_payload(13)
    created = await _register(client, admin, **payload)
    response = await client.get(f"{RESIDENTS}/{created['id']}", params={"reveal": "true"}, headers=agent)
    _problem(response, 403, "reveal_not_allowed", "reveal", "resident.reveal")
    assert payload["id_number"] not in response.text
    denied = await audit_events(database, resident_id=created["id"], outcome="denied")
    assert [(e.actor, e.action, e.detail) for e in denied] == [("staff:7", "read", "refused: reveal_not_allowed")]


async def test_a_resident_sees_their_own_record_whole_and_no_one_elses(
        client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str]) -> None:
    mine = resident_payload(14)
    me = await _register(client, admin, **mine)
    other = await _register(client, admin, **resident_payload(15))
    headers = await headers_for(app, resident_principal(me["id"]))
    own = await client.get(f"{RESIDENTS}/{me['id']}", params={"reveal": "true"}, headers=headers)
    assert own.status_code == 200
    assert own.json()["id_number"] == mine["id_number"]
    assert (await client.get(f"{RESIDENTS}/{other['id']}", headers=headers)).status_code == 404
    assert (await client.get(RESIDENTS, headers=headers)).status_code == 403


async def test_search_by_name_and_area_masks_and_audits_each_resident(
        client: httpx.AsyncClient, admin: dict[str, str], agent: dict[str, str], database: Database) -> None:
    first = await _register(client, admin, **resident_payload(16, name="李娜", address_area_code="320102"))
    second = await _register(client, admin, **resident_payload(17, name="李娜", address_area_code="320102"))
    await _register(client, admin, **resident_payload(18, name="李娜", address_area_code="320106"))
    await _register(client, admin, **resident_payload(19, name="王强", address_area_code="320102"))
    response = await client.get(RESIDENTS, params={"name": "李娜", "address_area_code": "320102"}, headers=agent)
    body = response.json()
    assert [r["id"] for r in body["items"]] == [first["id"], second["id"]]
    assert body["total"] == 2
    for seq in (16, 17):
        assert resident_payload(seq)["id_number"] not in response.text
    searches = await audit_events(database, action="search", actor="staff:7")
    assert sorted(e.resident_id for e in searches if e.resident_id) == [first["id"], second["id"]]


async def test_list_paginates(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ids = [(await _register(client, admin, **resident_payload(20 + n)))["id"] for n in range(5)]
    page = (await client.get(RESIDENTS, params={"limit": 2, "offset": 3}, headers=admin)).json()
    assert (page["total"], [r["id"] for r in page["items"]]) == (5, ids[3:5])


# --- Updating and deactivating ------------------------------------------------------------------------


async def test_patch_changes_the_phone_and_is_audited(client: httpx.AsyncClient, admin: dict[str, str],
                                                      database: Database) -> None:
    created = await _register(client, admin, **resident_payload(30))
    response = await client.patch(f"{RESIDENTS}/{created['id']}", json={"phone": "025-83626620"}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["phone_masked"] == "025*****6620"
    assert "83626620" not in response.text
    updates = await audit_events(database, resident_id=created["id"], action="update")
    assert len(updates) == 1


async def test_patch_repeating_the_same_values_changes_nothing(client: httpx.AsyncClient, app: FastAPI,
                                                               admin: dict[str, str], clock: SimulatedClock) -> None:
    payload = resident_payload(31)
    created = await _register(client, admin, **payload)
    clock.advance(timedelta(minutes=1))
    same = {k: payload[k] for k in ("id_number", "name", "phone", "address_area_code")}
    response = await client.patch(f"{RESIDENTS}/{created['id']}", json=same, headers=await admin_headers(app))
    assert response.json()["updated_at"] == created["updated_at"]


async def test_patch_sex_contradicting_the_number_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await _register(client, admin, **resident_payload(32, sex=Sex.MALE))
    response = await client.patch(f"{RESIDENTS}/{created['id']}", json={"sex": 2}, headers=admin)
    _problem(response, 422, "validation_failed", "id_number", "id_number.sex_mismatch")
    assert (await client.get(f"{RESIDENTS}/{created['id']}", headers=admin)).json()["sex"] == 1


async def test_patch_to_another_residents_number_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = resident_payload(33)
    await _register(client, admin, **first)
    second = await _register(client, admin, **resident_payload(34))
    response = await client.patch(f"{RESIDENTS}/{second['id']}", json={"id_number": first["id_number"]},
                                  headers=admin)
    _problem(response, 409, "resident_exists", "id_number", "resident.unique_id_number")
    assert first["id_number"] not in response.text


async def test_deactivate_keeps_the_record(client: httpx.AsyncClient, admin: dict[str, str],
                                           database: Database) -> None:
    created = await _register(client, admin, **resident_payload(35))
    response = await client.post(f"{RESIDENTS}/{created['id']}/deactivate", headers=admin)
    assert response.json()["is_active"] is False
    assert await count(database, Resident) == 1
    assert (await audit_events(database, resident_id=created["id"], action="deactivate"))


async def test_resident_routes_need_resident_scopes(client: httpx.AsyncClient, app: FastAPI,
                                                    admin: dict[str, str], database: Database) -> None:
    created = await _register(client, admin, **resident_payload(36))
    registry_only = await headers_for(app, machine(Scope.REGISTRY_READ, Scope.REGISTRY_WRITE))
    assert (await client.get(f"{RESIDENTS}/{created['id']}", headers=registry_only)).status_code == 403
    assert (await client.post(RESIDENTS, json=resident_payload(37), headers=registry_only)).status_code == 403
    reader = await headers_for(app, staff(Role.HOTLINE_AGENT))
    assert (await client.post(RESIDENTS, json=resident_payload(37), headers=reader)).status_code == 403
    assert await count(database, Resident) == 1
