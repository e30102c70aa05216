"""Family doctor teams at community health centres, service packages, and the areas' population figures.

Object rule: a centre's staff (organization-bound principals) see and write only their own centre's teams; a
platform administrator every centre's. Another centre's team looks like not found.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import NotFound, ValidationFailed
from cityhealth.records import family_repository as repository
from cityhealth.records.family_models import AreaPopulation, FamilyServicePackage, FamilyTeam, FamilyTeamMember
from cityhealth.records.family_schemas import (
    PackagePut,
    PackageRead,
    PopulationPut,
    PopulationRead,
    TeamMemberRead,
    TeamPut,
    TeamRead,
)
from cityhealth.registry import departments
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

COMMUNITY_HEALTH_CENTRE = "community_health_centre"
POPULATION_FILE = "family_population.json"


def may_act_for(principal: Principal | None, organization_id: int) -> bool:
    """The platform itself, a platform administrator, or the centre's own staff and clients."""
    return principal is None or principal.is_platform_admin or principal.organization_id == organization_id


def _team_not_found(team_id: int | str) -> NotFound:
    return NotFound(f"family doctor team {team_id} not found", field="team_id", value=team_id,
                    rule="family.team.exists")


async def team_for(session: AsyncSession, principal: Principal | None, team_id: int) -> FamilyTeam:
    """The team, if the caller acts for its centre; else 404 (another centre's team is not theirs to see)."""
    team = await repository.team(session, team_id)
    if team is None or not may_act_for(principal, team.organization_id):
        raise _team_not_found(team_id)
    return team


async def team_view(session: AsyncSession, team: FamilyTeam) -> TeamRead:
    members = await repository.members(session, [team.id])
    return TeamRead(id=team.id, organization_id=team.organization_id, code=team.code, name=team.name,
                    is_active=team.is_active,
                    members=[TeamMemberRead(practitioner_id=m.practitioner_id, role=m.role) for m in members])


async def _centre(session: AsyncSession, principal: Principal | None, organization_id: int) -> None:
    if not may_act_for(principal, organization_id):
        raise NotFound(f"organization {organization_id} not found", field="organization_id", value=organization_id)
    organization = await registry.get_organization(session, organization_id)
    if organization.kind != COMMUNITY_HEALTH_CENTRE:
        raise ValidationFailed(
            f"family doctor teams belong to community health centres; organization {organization_id} is a "
            f"{organization.kind}", field="organization_id", value=organization_id,
            rule="family.team.community_health_centre_only")


async def put_team(session: AsyncSession, clock: Clock, principal: Principal | None, organization_id: int,
                   code: str, data: TeamPut) -> TeamRead:
    """Create or replace a centre's team; the same team again changes nothing."""
    await _centre(session, principal, organization_id)
    roles: dict[int, str] = {}
    for index, member in enumerate(data.members):
        field = f"members[{index}].practitioner_id"
        if member.practitioner_id in roles:
            raise ValidationFailed(f"practitioner {member.practitioner_id} is named twice", field=field,
                                   value=member.practitioner_id, rule="family.team.member_once")
        try:
            practitioner = await departments.get_practitioner(session, organization_id, member.practitioner_id)
        except NotFound:
            raise ValidationFailed(
                f"practitioner {member.practitioner_id} is not on the staff of organization {organization_id}",
                field=field, value=member.practitioner_id, rule="family.team.member_of_centre") from None
        if not practitioner.is_active:
            raise ValidationFailed(f"practitioner {member.practitioner_id} is deactivated", field=field,
                                   value=member.practitioner_id, rule="family.team.member_active")
        roles[member.practitioner_id] = member.role
    if "doctor" not in roles.values():
        raise ValidationFailed("a family doctor team needs a doctor", field="members", value=None,
                               rule="family.team.needs_doctor")
    team = await repository.team_by_code(session, organization_id, code)
    now = clock.now()
    if team is None:
        team = FamilyTeam(organization_id=organization_id, code=code, name=data.name, is_active=True,
                          created_at=now, updated_at=now)
        await repository.add(session, team)
    current = {m.practitioner_id: m.role for m in await repository.members(session, [team.id])}
    if team.name != data.name or current != roles:
        team.name = data.name
        team.updated_at = now
        await repository.replace_members(session, team.id, [
            FamilyTeamMember(team_id=team.id, practitioner_id=pid, role=role) for pid, role in roles.items()])
    record(session, clock, principal, Action.UPDATE, "family_team", resource_id=team.id)
    return await team_view(session, team)


async def get_team(session: AsyncSession, principal: Principal, team_id: int) -> TeamRead:
    return await team_view(session, await team_for(session, principal, team_id))


async def list_teams(session: AsyncSession, principal: Principal, organization_id: int) -> list[TeamRead]:
    if not may_act_for(principal, organization_id):
        raise NotFound(f"organization {organization_id} not found", field="organization_id", value=organization_id)
    return [await team_view(session, team) for team in await repository.teams_of(session, organization_id)]


# --- Service packages ----------------------------------------------------------------------------------


async def put_package(session: AsyncSession, clock: Clock, principal: Principal | None, code: str,
                      data: PackagePut) -> PackageRead:
    """Create or change a service package; the same package again changes nothing."""
    package = await repository.package_by_code(session, code)
    now = clock.now()
    if package is None:
        package = FamilyServicePackage(code=code, created_at=now, updated_at=now, **data.model_dump())
        await repository.add(session, package)
    else:
        registry.apply_changes(package, data.model_dump(), clock)
    record(session, clock, principal, Action.UPDATE, "family_service_package", resource_id=package.id)
    return PackageRead.model_validate(package)


async def list_packages(session: AsyncSession) -> list[PackageRead]:
    return [PackageRead.model_validate(p) for p in await repository.packages(session)]


# --- Population, the contract rate's denominator -------------------------------------------------------


async def put_population(session: AsyncSession, clock: Clock, principal: Principal | None, area_code: str,
                         year: int, data: PopulationPut) -> PopulationRead:
    """Set an area's resident population of a year (reference data); the same figure again changes nothing."""
    await registry.require_area(session, area_code, field="area_code", must_be_active=False)
    row = await repository.population_row(session, area_code, year)
    if row is None:
        row = AreaPopulation(area_code=area_code, year=year, population=data.population, source=data.source,
                             updated_at=clock.now())
        await repository.add(session, row)
    elif (row.population, row.source) != (data.population, data.source):
        row.population, row.source, row.updated_at = data.population, data.source, clock.now()
    record(session, clock, principal, Action.UPDATE, "family_area_population", resource_id=f"{area_code}/{year}")
    return PopulationRead.model_validate(row)


def shipped_populations() -> dict[str, Any]:
    """The population figures shipped with the package (their source named in the file)."""
    text = resources.files("cityhealth.records").joinpath(POPULATION_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


async def load_populations(session: AsyncSession, clock: Clock) -> int:
    """Load the shipped figures for the areas the registry holds; returns how many were loaded."""
    data = shipped_populations()
    loaded = 0
    for row in data["populations"]:
        try:
            await registry.require_area(session, row["area_code"], field="area_code", must_be_active=False)
        except ValidationFailed:
            continue  # an area this installation does not hold
        await put_population(session, clock, None, row["area_code"], data["year"],
                             PopulationPut(population=row["population"], source=data["source"]))
        loaded += 1
    return loaded
