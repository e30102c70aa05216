"""Family doctor contracts: signing a resident or a household, the one-current-contract rule, switch, renewal,
cancellation, a team's panel, and `has_active_contract` for the shared record's access check."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import httpx
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.records import family_doctors
from cityhealth.records.family_doctors import OrganizationKey, PractitionerKey, has_active_contract, one_year_after
from cityhealth.records.family_models import FamilyContract
from cityhealth.records.family_schemas import ContractSign
from cityhealth.registry import service as registry
from tests.factories.registry import audit_events, count
from tests.factories.security import headers_for
from tests.factories.security import resident as resident_principal
from tests.records.family_support import (
    FAMILY,
    centre,
    doctor,
    package,
    practitioner,
    resident,
    sign_one,
    signing,
    stored,
    team,
)

TODAY = date(2022, 6, 15)  # the test clock's day


async def test_a_signing_runs_one_year_from_today_and_is_audited(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, team_id, _, _, contract = await sign_one(app, client)
    assert (contract["status"], contract["starts_on"], contract["ends_on"]) == ("active", "2022-06-15", "2023-06-15")
    assert contract["team_id"] == team_id
    assert contract["area_code"] == "320102"
    events = await audit_events(app.state.database, resource_type="family_contract", action="create")
    assert [event.resident_id for event in events] == [contract["resident_id"]]


async def test_a_second_contract_while_one_is_active_is_refused_naming_it(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    chc, _, package_id, headers, contract = await sign_one(app, client)
    other_team = await team(app, chc)
    response = await client.post(f"{FAMILY}/contracts", headers=headers,
                                 json=signing([contract["resident_id"]], other_team, package_id))
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "family_contract_active"
    assert problem["rule"] == "family.contract.one_active"
    assert f"contract {contract['id']}" in problem["detail"]
    assert await count(app.state.database, FamilyContract) == 1


async def test_the_same_signing_again_returns_the_contract_it_made(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, team_id, package_id, headers, contract = await sign_one(app, client)
    again = await client.post(f"{FAMILY}/contracts", headers=headers,
                              json=signing([contract["resident_id"]], team_id, package_id))
    assert again.status_code == 201
    assert again.json() == [contract]
    assert await count(app.state.database, FamilyContract) == 1


async def test_a_household_is_signed_together_under_one_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    team_id, package_id = await team(app, chc), await package(app)
    members = [await resident(app), await resident(app)]
    response = await client.post(f"{FAMILY}/contracts", headers=await doctor(app, chc),
                                 json=signing(members, team_id, package_id))
    assert response.status_code == 201
    made = response.json()
    assert [c["resident_id"] for c in made] == members
    assert made[0]["household_key"] is not None
    assert made[0]["household_key"] == made[1]["household_key"]


async def test_a_household_with_one_member_already_signed_writes_nothing(app: FastAPI,
                                                                         client: httpx.AsyncClient) -> None:
    chc, _, package_id, headers, contract = await sign_one(app, client)
    newcomer = await resident(app)
    response = await client.post(f"{FAMILY}/contracts", headers=headers,
                                 json=signing([newcomer, contract["resident_id"]], await team(app, chc), package_id))
    assert response.status_code == 409
    assert response.json()["value"] == contract["resident_id"]
    assert await count(app.state.database, FamilyContract) == 1


async def test_a_switch_ends_the_old_contract_the_day_the_new_one_starts(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    old_centre, _, package_id, _, contract = await sign_one(app, client)
    new_centre = await centre(app)
    new_team = await team(app, new_centre)
    starts = TODAY + timedelta(days=10)
    response = await client.post(f"{FAMILY}/contracts", headers=await doctor(app, new_centre),
                                 json=signing([contract["resident_id"]], new_team, package_id, starts_on=starts,
                                              switch=True))
    assert response.status_code == 201
    new = response.json()[0]
    assert (new["starts_on"], new["previous_id"]) == (starts.isoformat(), contract["id"])
    async with app.state.database.sessions() as session:
        old = await session.get(FamilyContract, contract["id"])
        assert old is not None
        assert (old.status, old.ended_on) == ("switched", starts)
        person = contract["resident_id"]
        day_before = datetime(2022, 6, 24, 12, tzinfo=BUSINESS_TZ)
        first_day = datetime(2022, 6, 25, 8, tzinfo=BUSINESS_TZ)
        assert await has_active_contract(session, OrganizationKey(old_centre), person, day_before)
        assert not await has_active_contract(session, OrganizationKey(old_centre), person, first_day)
        assert await has_active_contract(session, OrganizationKey(new_centre), person, first_day)
        assert not await has_active_contract(session, OrganizationKey(new_centre), person, day_before)


async def test_a_switch_to_the_same_team_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, team_id, package_id, headers, contract = await sign_one(app, client)
    response = await client.post(f"{FAMILY}/contracts", headers=headers,
                                 json=signing([contract["resident_id"]], team_id, package_id,
                                              starts_on=TODAY + timedelta(days=1), switch=True))
    assert response.status_code == 409
    assert response.json()["rule"] == "family.contract.switch_to_another_team"


async def test_has_active_contract_names_the_teams_practitioners_only(app: FastAPI) -> None:
    chc = await centre(app)
    gp, colleague = await practitioner(app, chc), await practitioner(app, chc)
    team_id = await team(app, chc, (gp, "doctor"))
    await team(app, chc, (colleague, "doctor"))
    person = await resident(app)
    async with app.state.database.transaction() as session:
        await family_doctors.sign(session, app.state.clock, registry.cipher_for(app.state.settings), None,
                                  ContractSign(resident_ids=[person], team_id=team_id,
                                               package_id=await package(app)))
    now = app.state.clock.now()
    async with app.state.database.sessions() as session:
        assert await has_active_contract(session, PractitionerKey(gp), person, now)
        assert not await has_active_contract(session, PractitionerKey(colleague), person, now)
        assert not await has_active_contract(session, PractitionerKey(gp), person, now - timedelta(days=1))


async def test_renewal_before_its_window_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, _, _, headers, contract = await sign_one(app, client)
    response = await client.post(f"{FAMILY}/contracts/{contract['id']}/renew", headers=headers, json={})
    assert response.status_code == 409
    assert response.json()["rule"] == "family.contract.renewal_window"


async def test_renewal_starts_the_day_the_year_ends_and_again_returns_it(app: FastAPI, client: httpx.AsyncClient,
                                                                        clock: SimulatedClock) -> None:
    chc, _, _, _, contract = await sign_one(app, client)
    clock.set(datetime(2023, 5, 20, 10, tzinfo=BUSINESS_TZ))
    headers = await doctor(app, chc)  # a token of the new day: the signing's has expired
    first = await client.post(f"{FAMILY}/contracts/{contract['id']}/renew", headers=headers, json={})
    again = await client.post(f"{FAMILY}/contracts/{contract['id']}/renew", headers=headers, json={})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert (first.json()["starts_on"], first.json()["ends_on"]) == ("2023-06-15", "2024-06-15")
    assert first.json()["previous_id"] == contract["id"]
    assert await count(app.state.database, FamilyContract) == 2


async def test_a_cancelled_contract_lets_the_resident_sign_again(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, team_id, package_id, headers, contract = await sign_one(app, client)
    cancelled = await client.post(f"{FAMILY}/contracts/{contract['id']}/cancel", headers=headers,
                                  json={"reason": "居民搬离辖区"})
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["ended_on"]) == ("cancelled", "2022-06-15")
    again = await client.post(f"{FAMILY}/contracts/{contract['id']}/cancel", headers=headers,
                              json={"reason": "居民搬离辖区"})
    assert again.json() == cancelled.json()
    signed = await client.post(f"{FAMILY}/contracts", headers=headers,
                               json=signing([contract["resident_id"]], team_id, package_id))
    assert signed.status_code == 201


async def test_another_centre_cannot_cancel_a_contract(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, _, _, _, contract = await sign_one(app, client)
    stranger = await doctor(app, await centre(app))
    response = await client.post(f"{FAMILY}/contracts/{contract['id']}/cancel", headers=stranger,
                                 json={"reason": "x"})
    assert response.status_code == 404
    assert (await stored(app, FamilyContract, contract["id"])).status == "active"


async def test_a_panel_shows_the_covered_residents_masked_and_is_audited(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    _, team_id, _, headers, contract = await sign_one(app, client)
    response = await client.get(f"{FAMILY}/teams/{team_id}/panel", headers=headers)
    assert response.status_code == 200
    [entry] = response.json()
    assert entry["contract"]["id"] == contract["id"]
    assert entry["resident"]["id_number_masked"].count("*") == 8
    events = await audit_events(app.state.database, resource_type="family_panel")
    assert [event.resident_id for event in events] == [contract["resident_id"]]


async def test_a_resident_reads_their_own_contracts(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, _, _, _, contract = await sign_one(app, client)
    headers = await headers_for(app, resident_principal(contract["resident_id"], account_id=77))
    response = await client.get(f"{FAMILY}/my-contracts", headers=headers)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [contract["id"]]


def test_a_contract_signed_on_29_february_runs_to_1_march() -> None:
    assert one_year_after(date(2024, 2, 29)) == date(2025, 3, 1)
    assert one_year_after(date(2023, 3, 1)) == date(2024, 3, 1)


async def test_racing_signings_for_one_resident_leave_one_contract(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    teams = [await team(app, chc) for _ in range(4)]
    package_id, person = await package(app), await resident(app)
    headers = await doctor(app, chc)
    responses = await asyncio.gather(*(client.post(f"{FAMILY}/contracts", headers=headers,
                                                   json=signing([person], team_id, package_id))
                                       for team_id in teams))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"family_contract_active"}
    assert await count(app.state.database, FamilyContract) == 1
