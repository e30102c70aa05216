"""Registry use cases: areas, organizations and client applications (departments and practitioners are in
`registry.departments`, residents in `registry.residents`, imports and reference data in `registry.imports`).

Every write validates the whole resulting record before changing anything, and writes only what differs, so a
refused request leaves nothing behind and a repeated one changes nothing. `principal=None` is the platform itself
(the CLI, the reference loader). This is the one registry module the other rooms import: what they need beyond
these use cases is re-exported here (`registry.lookups`, the phone checks, `registry.protection.cipher_for`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.facility_schemas import FacilityNear as FacilityNear
from cityhealth.registry.facility_schemas import NearPage as NearPage
from cityhealth.registry.facility_schemas import NearQuery as NearQuery
from cityhealth.registry.identifiers import IdentifierError as IdentifierError
from cityhealth.registry.identifiers import mask_phone as mask_phone
from cityhealth.registry.identifiers import validate_phone as validate_phone
from cityhealth.registry.lookups import OrganizationIds as OrganizationIds
from cityhealth.registry.lookups import OrganizationRef as OrganizationRef
from cityhealth.registry.lookups import ResidentTraits as ResidentTraits
from cityhealth.registry.lookups import department_names as department_names
from cityhealth.registry.lookups import id_number_hash as id_number_hash
from cityhealth.registry.lookups import link_candidates as link_candidates
from cityhealth.registry.lookups import match_residents as match_residents
from cityhealth.registry.lookups import organization_by_code as organization_by_code
from cityhealth.registry.lookups import organization_by_id as organization_by_id
from cityhealth.registry.lookups import organization_ids_by_code as organization_ids_by_code
from cityhealth.registry.lookups import organization_names as organization_names
from cityhealth.registry.lookups import organization_words as organization_words
from cityhealth.registry.lookups import parse_id_number as parse_id_number
from cityhealth.registry.lookups import phone_hash as phone_hash
from cityhealth.registry.lookups import resident_for_account as resident_for_account
from cityhealth.registry.lookups import resident_id_number as resident_id_number
from cityhealth.registry.lookups import resident_ids_by_id_number_hash as resident_ids_by_id_number_hash
from cityhealth.registry.lookups import resident_phone as resident_phone
from cityhealth.registry.lookups import resident_traits as resident_traits
from cityhealth.registry.lookups import resident_view as resident_view
from cityhealth.registry.lookups import residents_traits as residents_traits
from cityhealth.registry.models import Area, Organization
from cityhealth.registry.phone_accounts import AccountChoice as AccountChoice
from cityhealth.registry.phone_accounts import PhoneSignIn as PhoneSignIn
from cityhealth.registry.phone_accounts import check_registration_code as check_registration_code
from cityhealth.registry.phone_accounts import choose_account as choose_account
from cityhealth.registry.phone_accounts import register_with_code as register_with_code
from cityhealth.registry.phone_accounts import request_code as request_code
from cityhealth.registry.phone_accounts import sign_in_with_code as sign_in_with_code
from cityhealth.registry.protection import cipher_for as cipher_for
from cityhealth.registry.schemas import (
    AreaCreate,
    AreaRead,
    AreaUpdate,
    OrganizationCreate,
    OrganizationRead,
    OrganizationUpdate,
    Page,
)
from cityhealth.security.principals import Principal, Role

# Which levels may be an area's parent. A district may hang directly off a province (省直辖县级行政区划).
_PARENT_LEVELS = {
    "province": frozenset[str](),
    "city": frozenset({"province"}),
    "district": frozenset({"city", "province"}),
    "reporting_unit": frozenset({"city", "province"}),
}
# How many leading digits of a GB/T 2260 code name the parent: 2 for a province, 4 for a city.
_PREFIX_LENGTH = {"province": 2, "city": 4}


class Change(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def differences(row: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the row's (an ORM object, or a Core row read for comparison)."""
    return {key: value for key, value in values.items() if getattr(row, key) != value}


def apply_changes(row: Any, values: Mapping[str, Any], clock: Clock) -> bool:
    """Set the attributes that differ; stamp updated_at only if something did."""
    changed = differences(row, values)
    for key, value in changed.items():
        setattr(row, key, value)
    if changed:
        row.updated_at = clock.now()
    return bool(changed)


async def flush_unique(session: AsyncSession, error: Conflict) -> None:
    """Flush; a unique constraint lost to a concurrent writer becomes the same 409 as the pre-check's."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise error from exc


# --- Authorization ------------------------------------------------------------------------------------


def _is_organization_bound(principal: Principal) -> bool:
    # An organization admin is bound even if a malformed token carried no organization id: fail closed.
    return not principal.is_platform_admin and (
        principal.organization_id is not None or Role.ORGANIZATION_ADMIN in principal.roles
    )


def require_platform_writer(principal: Principal | None) -> None:
    """Areas, organizations and client apps are the platform's: organization-bound callers may not write them."""
    if principal is not None and _is_organization_bound(principal):
        raise Forbidden(
            "organization administrators and clients may write only their own organization's departments "
            "and practitioners", code="organization_scoped", field="organization_id",
            value=principal.organization_id, rule="registry.organization_scope")


async def organization_for_write(session: AsyncSession, principal: Principal | None,
                                 organization_id: int) -> Organization:
    """The organization, if the caller may write its departments and practitioners; else 404."""
    organization = await repository.get_organization(session, organization_id)
    if organization is None or (
        principal is not None and _is_organization_bound(principal)
        and principal.organization_id != organization_id
    ):
        raise NotFound(f"organization {organization_id} not found", field="organization_id", value=organization_id)
    return organization


# --- Areas --------------------------------------------------------------------------------------------


async def _area_read(session: AsyncSession, area: Area) -> AreaRead:
    mappings = await repository.mappings_of(session, [area.code])
    return _area_view(area, mappings.get(area.code, []))


def _area_view(area: Area, maps_to: list[str]) -> AreaRead:
    return AreaRead(code=area.code, name=area.name, level=area.level, parent_code=area.parent_code,
                    maps_to=maps_to, is_active=area.is_active, created_at=area.created_at,
                    updated_at=area.updated_at)


async def require_area(session: AsyncSession, code: str, *, field: str, must_be_active: bool = True) -> Area:
    """The area with this code, or 422 naming the field that referenced it."""
    area = await repository.get_area(session, code)
    check_area(code, None if area is None else area.is_active, field=field, must_be_active=must_be_active)
    assert area is not None  # noqa: S101 - check_area refused a missing one
    return area


def check_area(code: str, is_active: bool | None, *, field: str, must_be_active: bool = True) -> None:
    """Refuse a reference to an area that does not exist (`is_active` None) or, by default, is deactivated."""
    if is_active is None:
        raise ValidationFailed(f"{field}: no area has code {code}", field=field, value=code, rule="area.unknown")
    if must_be_active and not is_active:
        raise ValidationFailed(f"{field}: area {code} is deactivated", field=field, value=code,
                               rule="area.inactive")


_CODE_SHAPES = {
    "province": "6 digits ending 0000",
    "city": "6 digits ending 00",
    "district": "6 digits not ending 00",
    # A platform-local code must never collide with a present or future GB/T 2260 code.
    "reporting_unit": "a platform-local code containing a letter, e.g. 3201JB",
}


def _area_code_fits(code: str, level: str) -> bool:
    if level == "reporting_unit":
        return not code.isdigit()
    if len(code) != 6 or not code.isdigit():
        return False
    if level == "province":
        return code[2:] == "0000"
    if level == "city":
        return code[4:] == "00" and code[2:4] != "00"
    return code[4:] != "00"


def _check_area_code(code: str, level: str) -> None:
    if not _area_code_fits(code, level):
        raise ValidationFailed(f"code: a {level}'s code is {_CODE_SHAPES[level]}", field="code", value=code,
                               rule="area.code_format")


async def _check_area(session: AsyncSession, code: str, level: str, parent_code: str | None,
                      maps_to: Sequence[str] | None, *, parent_changed: bool) -> None:
    _check_area_code(code, level)
    allowed = _PARENT_LEVELS[level]
    if parent_code is None:
        if allowed:
            raise ValidationFailed(f"parent_code: a {level} needs a parent", field="parent_code", value=None,
                                   rule="area.parent_required")
    else:
        parent = await require_area(session, parent_code, field="parent_code", must_be_active=parent_changed)
        if parent.level not in allowed:
            raise ValidationFailed(
                f"parent_code: a {level} cannot sit under a {parent.level}", field="parent_code",
                value=parent_code, rule="area.parent_level")
        prefix = parent.code[:_PREFIX_LENGTH.get(parent.level, 0)]
        if level != "reporting_unit" and not code.startswith(prefix):
            raise ValidationFailed(
                f"code: {code} does not lie within its parent {parent_code}", field="code", value=code,
                rule="area.parent_prefix")
    if maps_to:
        if level != "reporting_unit":
            raise ValidationFailed("maps_to: only a reporting unit maps to districts", field="maps_to",
                                   value=",".join(maps_to), rule="area.maps_to")
        found = await repository.areas_by_code(session, set(maps_to))
        for district in maps_to:
            if district not in found:
                raise ValidationFailed(f"maps_to: no area has code {district}", field="maps_to",
                                       value=district, rule="area.unknown")
            if found[district].level != "district":
                raise ValidationFailed(f"maps_to: {district} is not a district", field="maps_to",
                                       value=district, rule="area.maps_to")


async def get_area(session: AsyncSession, code: str) -> AreaRead:
    area = await repository.get_area(session, code)
    if area is None:
        raise NotFound(f"area {code} not found", field="code", value=code)
    return await _area_read(session, area)


async def list_areas(session: AsyncSession, *, level: str | None = None, parent_code: str | None = None,
                     active: bool | None = None, limit: int = 100, offset: int = 0) -> Page[AreaRead]:
    rows, total = await repository.page(
        session, repository.areas_query(level=level, parent_code=parent_code, active=active),
        limit=limit, offset=offset)
    mappings = await repository.mappings_of(session, [a.code for a in rows if a.level == "reporting_unit"])
    return Page(items=[_area_view(a, mappings.get(a.code, [])) for a in rows], total=total, limit=limit, offset=offset)


async def create_area(session: AsyncSession, clock: Clock, principal: Principal | None,
                      data: AreaCreate) -> AreaRead:
    require_platform_writer(principal)
    return await _area_read(session, await insert_area(session, clock, data))


async def insert_area(session: AsyncSession, clock: Clock, data: AreaCreate, *, is_active: bool = True) -> Area:
    await _check_area(session, data.code, data.level, data.parent_code, data.maps_to, parent_changed=True)
    exists = Conflict(f"area {data.code} already exists", code="area_exists", field="code", value=data.code,
                      rule="area.unique_code")
    if await repository.get_area(session, data.code) is not None:
        raise exists
    now = clock.now()
    area = Area(code=data.code, name=data.name, level=data.level, parent_code=data.parent_code,
                is_active=is_active, created_at=now, updated_at=now)
    session.add(area)
    await flush_unique(session, exists)
    if data.maps_to:
        await repository.replace_mappings(session, data.code, set(data.maps_to))
    return area


async def update_area(session: AsyncSession, clock: Clock, principal: Principal | None, code: str,
                      data: AreaUpdate) -> AreaRead:
    require_platform_writer(principal)
    area = await repository.get_area(session, code)
    if area is None:
        raise NotFound(f"area {code} not found", field="code", value=code)
    await change_area(session, clock, area, data.model_dump(exclude_unset=True))
    return await _area_read(session, area)


async def change_area(session: AsyncSession, clock: Clock, area: Area, changes: dict[str, Any]) -> bool:
    """Apply the changes that differ, after checking the resulting area; True if anything changed."""
    maps_to = changes.pop("maps_to", None)
    current = (await repository.mappings_of(session, [area.code])).get(area.code, [])
    wanted = sorted(set(maps_to)) if maps_to is not None else current
    parent_code = changes.get("parent_code", area.parent_code)
    await _check_area(session, area.code, area.level, parent_code, wanted,
                      parent_changed=parent_code != area.parent_code)
    changed = apply_changes(area, changes, clock)
    if wanted != current:
        await repository.replace_mappings(session, area.code, wanted)
        area.updated_at = clock.now()
        changed = True
    await session.flush()
    return changed


async def deactivate_area(session: AsyncSession, clock: Clock, principal: Principal | None,
                          code: str) -> AreaRead:
    """Mark the area inactive: nothing new may reference it; existing references stay valid."""
    return await update_area(session, clock, principal, code, AreaUpdate(is_active=False))


# --- Organizations ------------------------------------------------------------------------------------

OrgField = Literal["code", "name", "uscc"]


def platform_organization_code(name: str) -> str:
    """A stable code for an organization whose credit code is unknown: the same name, the same code."""
    return "P" + hashlib.sha256(name.encode()).hexdigest()[:12].upper()


async def _check_unique_organization(session: AsyncSession, values: Mapping[str, Any],
                                     own_id: int | None) -> None:
    fields: tuple[OrgField, ...] = ("code", "name", "uscc")
    for field in fields:
        value = values.get(field)
        if value is None:
            continue
        other = await repository.organization_by(session, field, value)
        if other is not None and other.id != own_id:
            raise Conflict(f"{field}: another organization already has {field} {value}",
                           code="organization_exists", field=field, value=value,
                           rule=f"organization.unique_{field}")


async def _check_organization(session: AsyncSession, values: Mapping[str, Any], own_id: int | None,
                              changed: set[str]) -> None:
    if values.get("active_to") is not None and values["active_to"] < values["active_from"]:
        raise ValidationFailed("active_to: before active_from", field="active_to",
                               value=values["active_to"].isoformat(), rule="organization.active_dates")
    if values.get("area_code") is not None:
        area = await require_area(session, values["area_code"], field="area_code",
                                  must_be_active="area_code" in changed)
        if area.level == "reporting_unit" and values["kind"] != "district_platform":
            raise ValidationFailed(
                f"area_code: only a district platform belongs to reporting unit {area.code}; "
                "give the district", field="area_code", value=area.code, rule="organization.area_level")
    parent_id = values.get("parent_id")
    if parent_id is not None and "parent_id" in changed:
        if await repository.get_organization(session, parent_id) is None:
            raise ValidationFailed(f"parent_id: no organization has id {parent_id}", field="parent_id",
                                   value=parent_id, rule="organization.unknown")
        if own_id is not None and (
                parent_id == own_id or own_id in await repository.organization_ancestors(session, parent_id)):
            raise ValidationFailed(f"parent_id: organization {parent_id} is this one or below it",
                                   field="parent_id", value=parent_id, rule="organization.parent_cycle")
    await _check_unique_organization(session, values, own_id)


def _organization_conflict(values: Mapping[str, Any]) -> Conflict:
    return Conflict(f"organization {values['name']} conflicts with one written concurrently",
                    code="organization_exists", field="code", value=values["code"],
                    rule="organization.unique_code")


async def get_organization(session: AsyncSession, organization_id: int) -> OrganizationRead:
    organization = await repository.get_organization(session, organization_id)
    if organization is None:
        raise NotFound(f"organization {organization_id} not found", field="organization_id",
                       value=organization_id)
    return OrganizationRead.model_validate(organization)


async def list_organizations(session: AsyncSession, clock: Clock, *, kind: str | None = None,
                             area_code: str | None = None, name: str | None = None,
                             active: bool | None = None, limit: int = 100, offset: int = 0
                             ) -> Page[OrganizationRead]:
    """`active` is judged on today's business date (active_from <= today < active_to)."""
    today = business_date(clock.now())
    rows, total = await repository.page(session, repository.organizations_query(
        kind=kind, area_code=area_code, name=name, active_on=today if active else None,
        inactive_on=today if active is False else None), limit=limit, offset=offset)
    return Page(items=[OrganizationRead.model_validate(o) for o in rows], total=total, limit=limit,
                offset=offset)


async def create_organization(session: AsyncSession, clock: Clock, principal: Principal | None,
                              data: OrganizationCreate) -> OrganizationRead:
    require_platform_writer(principal)
    return OrganizationRead.model_validate(await insert_organization(session, clock, data.model_dump()))


async def insert_organization(session: AsyncSession, clock: Clock, values: dict[str, Any]) -> Organization:
    values = dict(values)
    values["code"] = values.get("code") or values.get("uscc") or platform_organization_code(values["name"])
    values["active_from"] = values.get("active_from") or business_date(clock.now())
    await _check_organization(session, values, None, set(values))
    now = clock.now()
    organization = Organization(**values, created_at=now, updated_at=now)
    session.add(organization)
    await flush_unique(session, _organization_conflict(values))
    return organization


async def update_organization(session: AsyncSession, clock: Clock, principal: Principal | None,
                              organization_id: int, data: OrganizationUpdate) -> OrganizationRead:
    require_platform_writer(principal)
    organization = await repository.get_organization(session, organization_id)
    if organization is None:
        raise NotFound(f"organization {organization_id} not found", field="organization_id",
                       value=organization_id)
    await change_organization(session, clock, organization, data.model_dump(exclude_unset=True))
    return OrganizationRead.model_validate(organization)


async def change_organization(session: AsyncSession, clock: Clock, organization: Organization,
                              changes: dict[str, Any]) -> bool:
    """Apply the changes that differ, after checking the resulting organization; True if anything changed."""
    current = {c: getattr(organization, c) for c in
               ("code", "name", "uscc", "kind", "area_code", "parent_id", "active_from", "active_to")}
    changed = {k for k, v in changes.items() if getattr(organization, k) != v}
    await _check_organization(session, current | changes, organization.id, changed)
    result = apply_changes(organization, changes, clock)
    await flush_unique(session, _organization_conflict(current | changes))
    return result


async def deactivate_organization(session: AsyncSession, clock: Clock, principal: Principal | None,
                                  organization_id: int, active_to: date | None = None) -> OrganizationRead:
    """End the organization's active period (default: today, so it is inactive from today). Never deletes."""
    require_platform_writer(principal)
    organization = await repository.get_organization(session, organization_id)
    if organization is None:
        raise NotFound(f"organization {organization_id} not found", field="organization_id",
                       value=organization_id)
    today = business_date(clock.now())
    if active_to is None and organization.active_to is not None and organization.active_to <= today:
        # Already inactive: a retried request must not move the recorded end date.
        return OrganizationRead.model_validate(organization)
    # An organization not yet active ends at its start: never active.
    end = active_to if active_to is not None else max(today, organization.active_from)
    await change_organization(session, clock, organization, {"active_to": end})
    return OrganizationRead.model_validate(organization)


# --- The medical e-map, for the booking room's nearby search (registry/facilities.py builds on this module) ----


async def near_facilities(session: AsyncSession, clock: Clock, query: NearQuery) -> NearPage:
    """The facilities within a great-circle radius, nearest first (registry/facilities.py)."""
    from cityhealth.registry import facilities

    return await facilities.near(session, clock, query)
