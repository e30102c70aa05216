"""Helpers of the family doctor and chronic disease tests: centres, practitioners and residents in the registry,
a team and a package, and the callers (a centre's family doctor, a district platform)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any, NamedTuple, TypeVar

import httpx
from fastapi import FastAPI

from cityhealth.errors import NotFound
from cityhealth.records import family_teams
from cityhealth.records.family_schemas import PackagePut, TeamPut
from cityhealth.registry import departments, residents
from cityhealth.registry import service as registry
from cityhealth.registry.schemas import PractitionerCreate, ResidentCreate
from cityhealth.security.principals import Role, Scope
from tests.factories.registry import SMALL_AREA_TREE, organization_payload, resident_id
from tests.factories.security import headers_for, machine, staff

FAMILY = "/api/records/family"
CHRONIC = "/api/records/chronic"
_users = itertools.count(700)
_staff_codes = itertools.count(1)
_residents = itertools.count(1)
_teams = itertools.count(1)
Row = TypeVar("Row")


async def ensure_areas(app: FastAPI) -> None:
    async with app.state.database.transaction() as session:
        for area in SMALL_AREA_TREE:
            try:
                await registry.get_area(session, area.code)
            except NotFound:
                await registry.insert_area(session, app.state.clock, area)


async def centre(app: FastAPI, area_code: str = "320102", kind: str = "community_health_centre") -> int:
    """A new organization (a community health centre unless `kind` says otherwise)."""
    await ensure_areas(app)
    async with app.state.database.transaction() as session:
        row = await registry.insert_organization(
            session, app.state.clock,
            organization_payload(area_code=area_code, kind=kind, ws218_type="B100", level="一级"))
        return row.id


async def practitioner(app: FastAPI, organization_id: int) -> int:
    async with app.state.database.transaction() as session:
        found = await departments.create_practitioner(
            session, app.state.clock, None, organization_id,
            PractitionerCreate(staff_code=f"FD{next(_staff_codes):04d}", name="家庭医生", title="主治医师"))
        return found.id


async def resident(app: FastAPI, area_code: str | None = "320102", *, seq: int | None = None) -> int:
    await ensure_areas(app)
    n = next(_residents) if seq is None else seq
    async with app.state.database.transaction() as session:
        found = await residents.register_resident(
            session, app.state.clock, registry.cipher_for(app.state.settings), None,
            ResidentCreate(id_number=resident_id(n), name=f"居民{n}", address_area_code=area_code))
        return found.id


def id_number_of(seq: int) -> str:
    return resident_id(seq)


async def team(app: FastAPI, organization_id: int, *members: tuple[int, str]) -> int:
    """A team of the centre: the members given, else a new doctor."""
    chosen = list(members) or [(await practitioner(app, organization_id), "doctor")]
    async with app.state.database.transaction() as session:
        found = await family_teams.put_team(
            session, app.state.clock, None, organization_id, f"T{next(_teams)}",
            TeamPut.model_validate({"name": "全科团队", "members": [
                {"practitioner_id": pid, "role": role} for pid, role in chosen]}))
        return found.id


async def package(app: FastAPI, code: str = "basic") -> int:
    async with app.state.database.transaction() as session:
        found = await family_teams.put_package(session, app.state.clock, None, code, PackagePut(
            name="基础包", services="健康评估、慢病随访、健康教育", annual_fee_fen=0))
        return found.id


async def doctor(app: FastAPI, organization_id: int) -> dict[str, str]:
    """Headers of a family doctor of the centre."""
    return await headers_for(app, staff(Role.FAMILY_DOCTOR, organization_id=organization_id, user_id=next(_users)))


async def admin(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.PLATFORM_ADMIN, user_id=next(_users)))


async def district_platform(app: FastAPI, organization_id: int) -> dict[str, str]:
    return await headers_for(app, machine(Scope.RECORDS_CHRONIC_UPLOAD, organization_id=organization_id,
                                          client_id=f"district-{organization_id}"))


def signing(resident_ids: list[int], team_id: int, package_id: int, **extra: Any) -> dict[str, Any]:
    return {"resident_ids": resident_ids, "team_id": team_id, "package_id": package_id} | {
        key: value.isoformat() if isinstance(value, date) else value for key, value in extra.items()}


class Signed(NamedTuple):
    centre_id: int
    team_id: int
    package_id: int
    headers: dict[str, str]  # the centre's family doctor's
    contract: dict[str, Any]  # as the API answered it

    @property
    def resident_id(self) -> int:
        resident_id: int = self.contract["resident_id"]
        return resident_id


async def sign_one(app: FastAPI, client: httpx.AsyncClient) -> Signed:
    """One new resident signed today, through the API, by the family doctor of a new centre's team."""
    chc = await centre(app)
    team_id, package_id, person = await team(app, chc), await package(app), await resident(app)
    headers = await doctor(app, chc)
    response = await client.post(f"{FAMILY}/contracts", headers=headers, json=signing([person], team_id, package_id))
    assert response.status_code == 201, response.text
    return Signed(chc, team_id, package_id, headers, response.json()[0])


async def stored(app: FastAPI, model: type[Row], key: Any) -> Row:
    """The row of `model` whose primary key is `key`, which must exist."""
    async with app.state.database.sessions() as session:
        found: Row | None = await session.get(model, key)
    assert found is not None, (model, key)
    return found
