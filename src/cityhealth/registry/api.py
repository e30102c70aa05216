"""Registry REST API: areas, organizations with their departments and practitioners, client apps, residents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from cityhealth.clock import Clock
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.engine import Database
from cityhealth.db.types import MAX_OFFSET, PageOffset, RowId
from cityhealth.errors import DomainError
from cityhealth.registry import client_apps, departments, residents, service
from cityhealth.registry.protection import cipher_for
from cityhealth.registry.schemas import (
    MAX_PAGE_SIZE,
    AreaCreate,
    AreaLevel,
    AreaRead,
    AreaUpdate,
    Channel,
    ClientAppCreate,
    ClientAppRead,
    ClientAppUpdate,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    OrganizationCreate,
    OrganizationDeactivate,
    OrganizationKind,
    OrganizationRead,
    OrganizationUpdate,
    Page,
    PractitionerCreate,
    PractitionerRead,
    PractitionerUpdate,
    ResidentCreate,
    ResidentLookup,
    ResidentRead,
    ResidentRevealed,
    ResidentUpdate,
)
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.dependencies import require, require_any
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/registry", tags=["registry"])


RegistryReader = Annotated[Principal, Depends(require(Scope.REGISTRY_READ))]
RegistryWriter = Annotated[Principal, Depends(require(Scope.REGISTRY_WRITE))]
ResidentReader = Annotated[Principal, Depends(require(Scope.RESIDENT_READ))]
ResidentWriter = Annotated[Principal, Depends(require(Scope.RESIDENT_WRITE))]
# A resident may read their own record (the service answers 404 for anyone else's).
ResidentViewer = Annotated[Principal, Depends(require_any(Scope.RESIDENT_READ, Scope.RESIDENT_SELF))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"page size, at most {MAX_PAGE_SIZE}")]
Offset = Annotated[PageOffset, Query(description=f"rows skipped, at most {MAX_OFFSET}")]


async def get_cipher(settings: SettingsDep) -> FieldCipher:
    return cipher_for(settings)


CipherDep = Annotated[FieldCipher, Depends(get_cipher)]


@asynccontextmanager
async def _audit_refusal(database: Database, clock: Clock, principal: Principal, action: Action,
                         resident_id: RowId | None = None) -> AsyncIterator[None]:
    """Audit a refused resident request: its own transaction rolls back, taking any queued event with it."""
    try:
        yield
    except DomainError as exc:
        await record_now(database, clock, principal, action, residents.RESOURCE, resource_id=resident_id,
                         resident_ids=[resident_id], outcome=Outcome.DENIED if exc.status == 403 else Outcome.FAILURE,
                         detail=f"refused: {exc.code}")
        raise


# --- Areas --------------------------------------------------------------------------------------------


@router.get("/areas", response_model=Page[AreaRead], summary="List areas")
async def list_areas(session: SessionDep, _: RegistryReader, level: AreaLevel | None = None,
                     parent_code: str | None = None, active: bool | None = None, limit: Limit = 100,
                     offset: Offset = 0) -> Page[AreaRead]:
    return await service.list_areas(session, level=level, parent_code=parent_code, active=active, limit=limit,
                                    offset=offset)


@router.get("/areas/{code}", response_model=AreaRead, summary="Get an area")
async def get_area(code: str, session: SessionDep, _: RegistryReader) -> AreaRead:
    return await service.get_area(session, code)


@router.post("/areas", response_model=AreaRead, status_code=status.HTTP_201_CREATED, summary="Create an area")
async def create_area(data: AreaCreate, session: SessionDep, clock: ClockDep, principal: RegistryWriter
                      ) -> AreaRead:
    return await service.create_area(session, clock, principal, data)


@router.patch("/areas/{code}", response_model=AreaRead, summary="Update an area")
async def update_area(code: str, data: AreaUpdate, session: SessionDep, clock: ClockDep,
                      principal: RegistryWriter) -> AreaRead:
    return await service.update_area(session, clock, principal, code, data)


@router.post("/areas/{code}/deactivate", response_model=AreaRead, summary="Deactivate an area (never deletes)")
async def deactivate_area(code: str, session: SessionDep, clock: ClockDep, principal: RegistryWriter) -> AreaRead:
    return await service.deactivate_area(session, clock, principal, code)


# --- Organizations ------------------------------------------------------------------------------------


@router.get("/organizations", response_model=Page[OrganizationRead], summary="List organizations")
async def list_organizations(
    session: SessionDep, clock: ClockDep, _: RegistryReader, kind: OrganizationKind | None = None,
    area_code: str | None = None, name: Annotated[str | None, Query(description="part of the name")] = None,
    active: Annotated[bool | None, Query(description="active today (Asia/Shanghai)")] = None,
    limit: Limit = 100, offset: Offset = 0,
) -> Page[OrganizationRead]:
    return await service.list_organizations(session, clock, kind=kind, area_code=area_code, name=name,
                                            active=active, limit=limit, offset=offset)


@router.get("/organizations/{organization_id}", response_model=OrganizationRead, summary="Get an organization")
async def get_organization(organization_id: RowId, session: SessionDep, _: RegistryReader) -> OrganizationRead:
    return await service.get_organization(session, organization_id)


@router.post("/organizations", response_model=OrganizationRead, status_code=status.HTTP_201_CREATED,
             summary="Create an organization")
async def create_organization(data: OrganizationCreate, session: SessionDep, clock: ClockDep,
                              principal: RegistryWriter) -> OrganizationRead:
    return await service.create_organization(session, clock, principal, data)


@router.patch("/organizations/{organization_id}", response_model=OrganizationRead,
              summary="Update an organization")
async def update_organization(organization_id: RowId, data: OrganizationUpdate, session: SessionDep,
                              clock: ClockDep, principal: RegistryWriter) -> OrganizationRead:
    return await service.update_organization(session, clock, principal, organization_id, data)


@router.post("/organizations/{organization_id}/deactivate", response_model=OrganizationRead,
             summary="End an organization's active period (never deletes)")
async def deactivate_organization(organization_id: RowId, session: SessionDep, clock: ClockDep,
                                  principal: RegistryWriter, data: OrganizationDeactivate | None = None
                                  ) -> OrganizationRead:
    return await service.deactivate_organization(session, clock, principal, organization_id,
                                                 data.active_to if data else None)


# --- Departments --------------------------------------------------------------------------------------


@router.get("/organizations/{organization_id}/departments", response_model=Page[DepartmentRead],
            summary="List an organization's departments")
async def list_departments(organization_id: RowId, session: SessionDep, _: RegistryReader,
                           active: bool | None = None, limit: Limit = 100, offset: Offset = 0
                           ) -> Page[DepartmentRead]:
    return await departments.list_departments(session, organization_id, active=active, limit=limit,
                                              offset=offset)


@router.get("/organizations/{organization_id}/departments/{department_id}", response_model=DepartmentRead,
            summary="Get a department")
async def get_department(organization_id: RowId, department_id: RowId, session: SessionDep, _: RegistryReader
                         ) -> DepartmentRead:
    return await departments.get_department(session, organization_id, department_id)


@router.post("/organizations/{organization_id}/departments", response_model=DepartmentRead,
             status_code=status.HTTP_201_CREATED, summary="Create a department")
async def create_department(organization_id: RowId, data: DepartmentCreate, session: SessionDep, clock: ClockDep,
                            principal: RegistryWriter) -> DepartmentRead:
    return await departments.create_department(session, clock, principal, organization_id, data)


@router.patch("/organizations/{organization_id}/departments/{department_id}", response_model=DepartmentRead,
              summary="Update a department")
async def update_department(organization_id: RowId, department_id: RowId, data: DepartmentUpdate,
                            session: SessionDep, clock: ClockDep, principal: RegistryWriter) -> DepartmentRead:
    return await departments.update_department(session, clock, principal, organization_id, department_id, data)


@router.post("/organizations/{organization_id}/departments/{department_id}/deactivate",
             response_model=DepartmentRead, summary="Deactivate a department (never deletes)")
async def deactivate_department(organization_id: RowId, department_id: RowId, session: SessionDep,
                                clock: ClockDep, principal: RegistryWriter) -> DepartmentRead:
    return await departments.deactivate_department(session, clock, principal, organization_id, department_id)


# --- Practitioners ------------------------------------------------------------------------------------


@router.get("/organizations/{organization_id}/practitioners", response_model=Page[PractitionerRead],
            summary="List an organization's practitioners")
async def list_practitioners(organization_id: RowId, session: SessionDep, _: RegistryReader,
                             department_id: RowId | None = None, active: bool | None = None,
                             limit: Limit = 100, offset: Offset = 0) -> Page[PractitionerRead]:
    return await departments.list_practitioners(session, organization_id, department_id=department_id,
                                                active=active, limit=limit, offset=offset)


@router.get("/organizations/{organization_id}/practitioners/{practitioner_id}", response_model=PractitionerRead,
            summary="Get a practitioner")
async def get_practitioner(organization_id: RowId, practitioner_id: RowId, session: SessionDep, _: RegistryReader
                           ) -> PractitionerRead:
    return await departments.get_practitioner(session, organization_id, practitioner_id)


@router.post("/organizations/{organization_id}/practitioners", response_model=PractitionerRead,
             status_code=status.HTTP_201_CREATED, summary="Create a practitioner")
async def create_practitioner(organization_id: RowId, data: PractitionerCreate, session: SessionDep,
                              clock: ClockDep, principal: RegistryWriter) -> PractitionerRead:
    return await departments.create_practitioner(session, clock, principal, organization_id, data)


@router.patch("/organizations/{organization_id}/practitioners/{practitioner_id}",
              response_model=PractitionerRead, summary="Update a practitioner")
async def update_practitioner(organization_id: RowId, practitioner_id: RowId, data: PractitionerUpdate,
                              session: SessionDep, clock: ClockDep, principal: RegistryWriter
                              ) -> PractitionerRead:
    return await departments.update_practitioner(session, clock, principal, organization_id, practitioner_id,
                                                 data)


@router.post("/organizations/{organization_id}/practitioners/{practitioner_id}/deactivate",
             response_model=PractitionerRead, summary="Deactivate a practitioner (never deletes)")
async def deactivate_practitioner(organization_id: RowId, practitioner_id: RowId, session: SessionDep,
                                  clock: ClockDep, principal: RegistryWriter) -> PractitionerRead:
    return await departments.deactivate_practitioner(session, clock, principal, organization_id,
                                                     practitioner_id)


# --- Client applications ------------------------------------------------------------------------------


@router.get("/client-apps", response_model=Page[ClientAppRead], summary="List client applications")
async def list_client_apps(session: SessionDep, _: RegistryReader, channel: Channel | None = None,
                           active: bool | None = None, limit: Limit = 100, offset: Offset = 0
                           ) -> Page[ClientAppRead]:
    return await client_apps.list_client_apps(session, channel=channel, active=active, limit=limit, offset=offset)


@router.get("/client-apps/{app_id}", response_model=ClientAppRead, summary="Get a client application")
async def get_client_app(app_id: RowId, session: SessionDep, _: RegistryReader) -> ClientAppRead:
    return await client_apps.get_client_app(session, app_id)


@router.post("/client-apps", response_model=ClientAppRead, status_code=status.HTTP_201_CREATED,
             summary="Register a client application")
async def create_client_app(data: ClientAppCreate, session: SessionDep, clock: ClockDep,
                            principal: RegistryWriter) -> ClientAppRead:
    return await client_apps.create_client_app(session, clock, principal, data)


@router.patch("/client-apps/{app_id}", response_model=ClientAppRead, summary="Update a client application")
async def update_client_app(app_id: RowId, data: ClientAppUpdate, session: SessionDep, clock: ClockDep,
                            principal: RegistryWriter) -> ClientAppRead:
    return await client_apps.update_client_app(session, clock, principal, app_id, data)


@router.post("/client-apps/{app_id}/deactivate", response_model=ClientAppRead,
             summary="Deactivate a client application (never deletes)")
async def deactivate_client_app(app_id: RowId, session: SessionDep, clock: ClockDep, principal: RegistryWriter
                                ) -> ClientAppRead:
    return await client_apps.deactivate_client_app(session, clock, principal, app_id)


# --- Residents ----------------------------------------------------------------------------------------


@router.get("/residents", response_model=Page[ResidentRead], summary="List or search residents (masked)")
async def list_residents(
    session: SessionDep, clock: ClockDep, cipher: CipherDep, principal: ResidentReader,
    name: Annotated[str | None, Query(description="exact name")] = None, address_area_code: str | None = None,
    active: bool | None = None, limit: Limit = 100, offset: Offset = 0,
) -> Page[ResidentRead]:
    return await residents.list_residents(session, clock, cipher, principal, name=name,
                                          address_area_code=address_area_code, active=active, limit=limit,
                                          offset=offset)


@router.post("/residents/lookup", response_model=ResidentRead,
             summary="Find a resident by ID number (in the body, never the URL)")
async def lookup_resident(data: ResidentLookup, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                          cipher: CipherDep, principal: ResidentReader) -> ResidentRead:
    async with _audit_refusal(database, clock, principal, Action.SEARCH):
        found = await residents.find_resident_by_id_number(session, clock, cipher, principal, data.id_number)
        if found is None:
            raise residents.not_registered(data.id_number)
        return found


@router.get("/residents/{resident_id}", response_model=ResidentRevealed | ResidentRead,
            summary="Get a resident: masked; whole numbers (reveal) for the resident or a platform admin")
async def get_resident(resident_id: RowId, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                       cipher: CipherDep, principal: ResidentViewer, reveal: bool = False) -> ResidentRead:
    async with _audit_refusal(database, clock, principal, Action.READ, resident_id):
        return await residents.get_resident(session, clock, cipher, principal, resident_id, reveal=reveal)


@router.post("/residents", response_model=ResidentRead, status_code=status.HTTP_201_CREATED,
             summary="Register a resident (409 resident_exists if the ID number is registered)")
async def register_resident(data: ResidentCreate, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                            cipher: CipherDep, principal: ResidentWriter) -> ResidentRead:
    async with _audit_refusal(database, clock, principal, Action.CREATE):
        return await residents.register_resident(session, clock, cipher, principal, data)


@router.patch("/residents/{resident_id}", response_model=ResidentRead, summary="Update a resident")
async def update_resident(resident_id: RowId, data: ResidentUpdate, session: SessionDep, database: DatabaseDep,
                          clock: ClockDep, cipher: CipherDep, principal: ResidentWriter) -> ResidentRead:
    async with _audit_refusal(database, clock, principal, Action.UPDATE, resident_id):
        return await residents.update_resident(session, clock, cipher, principal, resident_id, data)


@router.post("/residents/{resident_id}/deactivate", response_model=ResidentRead,
             summary="Deactivate a resident (never deletes)")
async def deactivate_resident(resident_id: RowId, session: SessionDep, database: DatabaseDep, clock: ClockDep,
                              cipher: CipherDep, principal: ResidentWriter) -> ResidentRead:
    async with _audit_refusal(database, clock, principal, Action.DEACTIVATE, resident_id):
        return await residents.deactivate_resident(session, clock, cipher, principal, resident_id)
