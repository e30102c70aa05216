"""Object rules of the family doctor and chronic disease routes: a centre's staff see their own centre's teams,
contracts, panels, registrations and overdue list; a resident their own contracts."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from cityhealth.records import chronic, family_doctors
from cityhealth.records.family_schemas import ContractSign
from cityhealth.registry import service as registry
from tests.factories.security import headers_for
from tests.factories.security import resident as resident_principal
from tests.records.family_support import centre, doctor, package, resident, team
from tests.security.objects import Owner, not_object_scoped, object_endpoint


@dataclass
class _Centre:
    headers: dict[str, str]
    organization_id: int
    team_id: int
    contract_id: int
    resident_id: int
    registration_id: int


async def _centres(app: FastAPI, owners: int) -> list[_Centre]:
    """`owners` centres, each with a team, one signed resident on its hypertension register (overdue)."""
    cipher = registry.cipher_for(app.state.settings)
    package_id = await package(app)
    found = []
    for _ in range(owners):
        chc = await centre(app)
        team_id, person = await team(app, chc), await resident(app)
        async with app.state.database.transaction() as session:
            [contract] = await family_doctors.sign(session, app.state.clock, cipher, None, ContractSign(
                resident_ids=[person], team_id=team_id, package_id=package_id))
            registration = await chronic.register(
                session, app.state.clock, cipher, None, resident_id=person, program="hypertension",
                registered_on=contract.starts_on.replace(month=1), organization_id=chc, source="clinic",
                source_ref=None)
        found.append(_Centre(await doctor(app, chc), chc, team_id, contract.id, person, registration.id))
    return found


@object_endpoint("GET", "/api/records/family/organizations/{organization_id}/teams", kind="list",
                 rule="a centre's staff list only their own centre's teams")
async def teams(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, path={"organization_id": c.organization_id}, marker=f'{{"id":{c.team_id},')
            for c in await _centres(app, owners)]


@object_endpoint("GET", "/api/records/family/teams/{team_id}", kind="read",
                 rule="another centre's team looks like not found")
async def team_read(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, path={"team_id": c.team_id}) for c in await _centres(app, owners)]


@object_endpoint("GET", "/api/records/family/teams/{team_id}/panel", kind="read",
                 rule="a team's panel is its centre's only")
async def panel(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, path={"team_id": c.team_id}) for c in await _centres(app, owners)]


@object_endpoint("GET", "/api/records/family/contracts/{contract_id}", kind="read",
                 rule="a contract is seen only by its team's centre")
async def contract(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, path={"contract_id": c.contract_id}) for c in await _centres(app, owners)]


@object_endpoint("GET", "/api/records/family/my-contracts", kind="list",
                 rule="a resident lists only their own contracts")
async def my_contracts(app: FastAPI, owners: int) -> list[Owner]:
    found = []
    for n, c in enumerate(await _centres(app, owners)):
        headers = await headers_for(app, resident_principal(c.resident_id, account_id=900 + n))
        found.append(Owner(headers, marker=f'{{"id":{c.contract_id},'))
    return found


@object_endpoint("GET", "/api/records/chronic/registrations/{registration_id}", kind="read",
                 rule="a registration is seen only by its managing centre")
async def registration(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, path={"registration_id": c.registration_id}) for c in await _centres(app, owners)]


@object_endpoint("GET", "/api/records/chronic/overdue", kind="list",
                 rule="a centre's overdue list holds only its own patients")
async def overdue(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(c.headers, marker=f'{{"id":{c.registration_id},"resident_id":{c.resident_id},')
            for c in await _centres(app, owners)]


not_object_scoped("GET", "/api/records/family/packages", "reference data: the service packages every centre offers")
not_object_scoped("GET", "/api/records/family/contract-rates/{area_code}",
                  "an area's aggregate: counts and a rate, no resident named")
not_object_scoped("GET", "/api/records/chronic/indicators", "aggregates per area or team, no resident named")
