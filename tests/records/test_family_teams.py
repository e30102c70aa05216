"""Family doctor teams: community health centres only, members from the centre's staff, replaced idempotently."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.records.family_models import FamilyTeam, FamilyTeamMember
from tests.factories.registry import count
from tests.records.family_support import FAMILY, admin, centre, doctor, practitioner


async def _put_team(client: httpx.AsyncClient, organization_id: int, headers: dict[str, str], practitioner_id: int,
                    role: str) -> httpx.Response:
    """PUT team T1 of the organization with one member."""
    return await client.put(f"{FAMILY}/organizations/{organization_id}/teams/T1", headers=headers,
                            json={"name": "团队", "members": [{"practitioner_id": practitioner_id, "role": role}]})


async def test_a_team_at_a_hospital_is_refused_naming_the_rule(app: FastAPI, client: httpx.AsyncClient) -> None:
    hospital = await centre(app, kind="hospital")
    member = await practitioner(app, hospital)
    response = await _put_team(client, hospital, await admin(app), member, "doctor")
    assert response.status_code == 422
    assert response.json()["rule"] == "family.team.community_health_centre_only"
    assert response.json()["field"] == "organization_id"
    assert await count(app.state.database, FamilyTeam) == 0


async def test_a_member_from_another_organization_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, other = await centre(app), await centre(app)
    stranger = await practitioner(app, other)
    response = await _put_team(client, chc, await doctor(app, chc), stranger, "doctor")
    assert response.status_code == 422
    assert response.json()["rule"] == "family.team.member_of_centre"
    assert response.json()["field"] == "members[0].practitioner_id"


async def test_a_team_without_a_doctor_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    nurse = await practitioner(app, chc)
    response = await _put_team(client, chc, await doctor(app, chc), nurse, "nurse")
    assert response.status_code == 422
    assert response.json()["rule"] == "family.team.needs_doctor"


async def test_putting_the_same_team_twice_keeps_one_team(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc = await centre(app)
    gp, nurse, public_health = [await practitioner(app, chc) for _ in range(3)]
    body = {"name": "全科一队", "members": [{"practitioner_id": gp, "role": "doctor"},
                                          {"practitioner_id": nurse, "role": "nurse"},
                                          {"practitioner_id": public_health, "role": "public_health"}]}
    headers = await doctor(app, chc)
    first = await client.put(f"{FAMILY}/organizations/{chc}/teams/T1", headers=headers, json=body)
    again = await client.put(f"{FAMILY}/organizations/{chc}/teams/T1", headers=headers, json=body)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert {m["role"] for m in again.json()["members"]} == {"doctor", "nurse", "public_health"}
    assert await count(app.state.database, FamilyTeam) == 1
    assert await count(app.state.database, FamilyTeamMember) == 3


async def test_another_centres_team_looks_like_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    chc, other = await centre(app), await centre(app)
    gp = await practitioner(app, chc)
    created = await _put_team(client, chc, await doctor(app, chc), gp, "doctor")
    response = await client.get(f"{FAMILY}/teams/{created.json()['id']}", headers=await doctor(app, other))
    assert response.status_code == 404
