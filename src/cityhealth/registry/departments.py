"""Departments (national 诊疗科目 code + local name) and practitioners of an organization.

Organization administrators write only their own organization's; another organization's looks absent (404).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.models import Department, Practitioner
from cityhealth.registry.schemas import (
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    Page,
    PractitionerCreate,
    PractitionerRead,
    PractitionerUpdate,
)
from cityhealth.registry.service import apply_changes, flush_unique, get_organization, organization_for_write
from cityhealth.security.principals import Principal

# --- Departments --------------------------------------------------------------------------------------


def _department_conflict(organization_id: int, local_code: str) -> Conflict:
    return Conflict(f"organization {organization_id} already has a department with local code {local_code}",
                    code="department_exists", field="local_code", value=local_code,
                    rule="department.unique_local_code")


async def list_departments(session: AsyncSession, organization_id: int, *, active: bool | None = None,
                           limit: int = 100, offset: int = 0) -> Page[DepartmentRead]:
    await get_organization(session, organization_id)
    rows, total = await repository.page(
        session, repository.departments_query(organization_id, active=active), limit=limit, offset=offset)
    return Page(items=[DepartmentRead.model_validate(d) for d in rows], total=total, limit=limit,
                offset=offset)


async def get_department(session: AsyncSession, organization_id: int, department_id: int) -> DepartmentRead:
    return DepartmentRead.model_validate(await _department(session, organization_id, department_id))


async def _department(session: AsyncSession, organization_id: int, department_id: int) -> Department:
    department = await repository.get_department(session, organization_id, department_id)
    if department is None:
        raise NotFound(f"department {department_id} of organization {organization_id} not found",
                       field="department_id", value=department_id)
    return department


async def create_department(session: AsyncSession, clock: Clock, principal: Principal | None,
                            organization_id: int, data: DepartmentCreate) -> DepartmentRead:
    organization = await organization_for_write(session, principal, organization_id)
    if await repository.department_by_local_code(session, organization.id, data.local_code) is not None:
        raise _department_conflict(organization.id, data.local_code)
    return DepartmentRead.model_validate(await insert_department(session, clock, organization.id, data.model_dump()))


async def insert_department(session: AsyncSession, clock: Clock, organization_id: int,
                            values: dict[str, Any]) -> Department:
    now = clock.now()
    department = Department(**({"is_active": True} | values), organization_id=organization_id, created_at=now,
                            updated_at=now)
    session.add(department)
    await flush_unique(session, _department_conflict(organization_id, values["local_code"]))
    return department


async def update_department(session: AsyncSession, clock: Clock, principal: Principal | None,
                            organization_id: int, department_id: int, data: DepartmentUpdate) -> DepartmentRead:
    organization = await organization_for_write(session, principal, organization_id)
    department = await _department(session, organization.id, department_id)
    apply_changes(department, data.model_dump(exclude_unset=True), clock)
    await session.flush()
    return DepartmentRead.model_validate(department)


async def deactivate_department(session: AsyncSession, clock: Clock, principal: Principal | None,
                                organization_id: int, department_id: int) -> DepartmentRead:
    return await update_department(session, clock, principal, organization_id, department_id,
                                   DepartmentUpdate(is_active=False))


# --- Practitioners ------------------------------------------------------------------------------------


def _practitioner_conflict(organization_id: int, staff_code: str) -> Conflict:
    return Conflict(f"organization {organization_id} already has a practitioner with staff code {staff_code}",
                    code="practitioner_exists", field="staff_code", value=staff_code,
                    rule="practitioner.unique_staff_code")


async def check_practitioner_department(session: AsyncSession, organization_id: int,
                                        department_id: int | None, *, field: str = "department_id") -> None:
    if department_id is not None and await repository.get_department(
            session, organization_id, department_id) is None:
        raise ValidationFailed(f"{field}: organization {organization_id} has no department {department_id}",
                               field=field, value=department_id, rule="practitioner.department")


async def list_practitioners(session: AsyncSession, organization_id: int, *, department_id: int | None = None,
                             active: bool | None = None, limit: int = 100, offset: int = 0
                             ) -> Page[PractitionerRead]:
    await get_organization(session, organization_id)
    rows, total = await repository.page(session, repository.practitioners_query(
        organization_id, department_id=department_id, active=active), limit=limit, offset=offset)
    return Page(items=[PractitionerRead.model_validate(p) for p in rows], total=total, limit=limit,
                offset=offset)


async def get_practitioner(session: AsyncSession, organization_id: int, practitioner_id: int
                           ) -> PractitionerRead:
    return PractitionerRead.model_validate(await _practitioner(session, organization_id, practitioner_id))


async def _practitioner(session: AsyncSession, organization_id: int, practitioner_id: int) -> Practitioner:
    practitioner = await repository.get_practitioner(session, organization_id, practitioner_id)
    if practitioner is None:
        raise NotFound(f"practitioner {practitioner_id} of organization {organization_id} not found",
                       field="practitioner_id", value=practitioner_id)
    return practitioner


async def create_practitioner(session: AsyncSession, clock: Clock, principal: Principal | None,
                              organization_id: int, data: PractitionerCreate) -> PractitionerRead:
    organization = await organization_for_write(session, principal, organization_id)
    await check_practitioner_department(session, organization.id, data.department_id)
    if await repository.practitioner_by_staff_code(session, organization.id, data.staff_code) is not None:
        raise _practitioner_conflict(organization.id, data.staff_code)
    practitioner = await insert_practitioner(session, clock, organization.id, data.model_dump())
    return PractitionerRead.model_validate(practitioner)


async def insert_practitioner(session: AsyncSession, clock: Clock, organization_id: int,
                              values: dict[str, Any]) -> Practitioner:
    now = clock.now()
    practitioner = Practitioner(**({"is_active": True} | values), organization_id=organization_id,
                                created_at=now, updated_at=now)
    session.add(practitioner)
    await flush_unique(session, _practitioner_conflict(organization_id, values["staff_code"]))
    return practitioner


async def update_practitioner(session: AsyncSession, clock: Clock, principal: Principal | None,
                              organization_id: int, practitioner_id: int, data: PractitionerUpdate
                              ) -> PractitionerRead:
    organization = await organization_for_write(session, principal, organization_id)
    practitioner = await _practitioner(session, organization.id, practitioner_id)
    changes = data.model_dump(exclude_unset=True)
    if "department_id" in changes:
        await check_practitioner_department(session, organization.id, changes["department_id"])
    apply_changes(practitioner, changes, clock)
    await session.flush()
    return PractitionerRead.model_validate(practitioner)


async def deactivate_practitioner(session: AsyncSession, clock: Clock, principal: Principal | None,
                                  organization_id: int, practitioner_id: int) -> PractitionerRead:
    return await update_practitioner(session, clock, principal, organization_id, practitioner_id,
                                     PractitionerUpdate(is_active=False))
