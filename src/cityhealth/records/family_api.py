"""Family doctor API: teams, service packages, contracts, panels, population figures and contract rates."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.records import family_doctors, family_teams
from cityhealth.records.family_schemas import (
    ContractCancel,
    ContractRateRead,
    ContractRead,
    ContractRenew,
    ContractSign,
    PackagePut,
    PackageRead,
    PanelEntry,
    PopulationPut,
    PopulationRead,
    TeamPut,
    TeamRead,
)
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/records/family", tags=["records: family doctors"],
                   route_class=refusals_audited("family_contract"))
Centre = Annotated[Principal, Depends(require(Scope.RECORDS_FAMILY))]
Admin = Annotated[Principal, Depends(require(Scope.RECORDS_FAMILY_ADMIN))]
Indicators = Annotated[Principal, Depends(require(Scope.RECORDS_INDICATORS))]
Resident = Annotated[Principal, Depends(require(Scope.RESIDENT_SELF))]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
AreaCode = Annotated[str, Path(pattern=r"^[0-9A-Z]{6,12}$")]


async def get_cipher(settings: SettingsDep) -> FieldCipher:
    return registry.cipher_for(settings)


CipherDep = Annotated[FieldCipher, Depends(get_cipher)]


@router.put("/organizations/{organization_id}/teams/{code}", response_model=TeamRead,
            summary="Create or replace a community health centre's family doctor team")
async def put_team(principal: Centre, session: SessionDep, clock: ClockDep, organization_id: RowId, code: Code,
                   data: TeamPut) -> TeamRead:
    return await family_teams.put_team(session, clock, principal, organization_id, code, data)


@router.get("/organizations/{organization_id}/teams", response_model=list[TeamRead], summary="A centre's teams")
async def list_teams(principal: Centre, session: SessionDep, organization_id: RowId) -> list[TeamRead]:
    return await family_teams.list_teams(session, principal, organization_id)


@router.get("/teams/{team_id}", response_model=TeamRead, summary="A team and its members")
async def get_team(principal: Centre, session: SessionDep, team_id: RowId) -> TeamRead:
    return await family_teams.get_team(session, principal, team_id)


@router.get("/teams/{team_id}/panel", response_model=list[PanelEntry],
            summary="The residents a team's contracts cover on a day (masked, audited)")
async def team_panel(principal: Centre, session: SessionDep, clock: ClockDep, cipher: CipherDep, team_id: RowId,
                     on: date | None = None, after_id: Annotated[RowId, Query(ge=0)] = 0,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[PanelEntry]:
    return await family_doctors.team_panel(session, clock, cipher, principal, team_id, on=on, after_id=after_id,
                                           limit=limit)


@router.put("/packages/{code}", response_model=PackageRead, summary="Create or change a service package")
async def put_package(principal: Admin, session: SessionDep, clock: ClockDep, code: Code,
                      data: PackagePut) -> PackageRead:
    return await family_teams.put_package(session, clock, principal, code, data)


@router.get("/packages", response_model=list[PackageRead], summary="The service packages")
async def list_packages(principal: Centre, session: SessionDep) -> list[PackageRead]:
    return await family_teams.list_packages(session)


@router.post("/contracts", response_model=list[ContractRead], status_code=201,
             summary="Sign a resident or a household with a team for a year (switch: end the current contract)")
async def sign(principal: Centre, session: SessionDep, clock: ClockDep, cipher: CipherDep,
               data: ContractSign) -> list[ContractRead]:
    return await family_doctors.sign(session, clock, cipher, principal, data)


@router.get("/contracts/{contract_id}", response_model=ContractRead, summary="A contract of the centre's teams")
async def get_contract(principal: Centre, session: SessionDep, clock: ClockDep, contract_id: RowId) -> ContractRead:
    return await family_doctors.get_contract(session, clock, principal, contract_id)


@router.post("/contracts/{contract_id}/renew", response_model=ContractRead, summary="Renew a contract for a year")
async def renew(principal: Centre, session: SessionDep, clock: ClockDep, contract_id: RowId,
                data: ContractRenew) -> ContractRead:
    return await family_doctors.renew(session, clock, principal, contract_id, data)


@router.post("/contracts/{contract_id}/cancel", response_model=ContractRead, summary="Cancel a contract")
async def cancel(principal: Centre, session: SessionDep, clock: ClockDep, contract_id: RowId,
                 data: ContractCancel) -> ContractRead:
    return await family_doctors.cancel(session, clock, principal, contract_id, data)


@router.get("/my-contracts", response_model=list[ContractRead], summary="A resident's own contracts")
async def my_contracts(principal: Resident, session: SessionDep, clock: ClockDep) -> list[ContractRead]:
    return await family_doctors.my_contracts(session, clock, principal)


@router.put("/populations/{area_code}/{year}", response_model=PopulationRead,
            summary="Set an area's resident population of a year (the contract rate's denominator)")
async def put_population(principal: Admin, session: SessionDep, clock: ClockDep, area_code: AreaCode,
                         year: Annotated[int, Path(ge=1949, le=2100)], data: PopulationPut) -> PopulationRead:
    return await family_teams.put_population(session, clock, principal, area_code, year, data)


@router.get("/contract-rates/{area_code}", response_model=ContractRateRead,
            summary="Signed residents ÷ resident population of an area on a day")
async def contract_rate(principal: Indicators, session: SessionDep, clock: ClockDep, area_code: AreaCode,
                        on: date | None = None) -> ContractRateRead:
    return await family_doctors.contract_rate(session, clock, area_code, on)
