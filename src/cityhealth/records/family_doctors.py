"""Family doctor contracts (签约): sign for a resident or a household, renew, switch, cancel; a team's panel; the
contract rate per area; and `has_active_contract`, one of the reasons a clinician may open a shared record.

A contract runs for one year, [starts_on, ends_on). A resident has at most one current (`active`) contract — a
unique index holds it under concurrent signings. A contract covers a day from its start until its year ends or
it was ended early (`ended_on`, exclusive): a switch ends the old one the day the new one starts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.records import family_repository as repository
from cityhealth.records.family_models import FamilyContract
from cityhealth.records.family_schemas import (
    ContractCancel,
    ContractRateRead,
    ContractRead,
    ContractRenew,
    ContractSign,
    PanelEntry,
)
from cityhealth.records.family_teams import may_act_for, team_for
from cityhealth.registry import service as registry
from cityhealth.registry.schemas import ResidentRead
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

# How long before its year ends a contract may be renewed.
RENEWAL_WINDOW_DAYS = 60


@dataclass(frozen=True)
class PractitionerKey:
    """A practitioner of the registry, as a member of the contracted team."""

    practitioner_id: int


@dataclass(frozen=True)
class OrganizationKey:
    """A community health centre, as the contracted team's centre."""

    organization_id: int


async def has_active_contract(session: AsyncSession, practitioner_id_or_org: PractitionerKey | OrganizationKey,
                              resident_id: int, at: datetime) -> bool:
    """Whether the resident had, at `at`, a contract with a team the practitioner is in (or of the centre)."""
    on = business_date(at)
    if isinstance(practitioner_id_or_org, PractitionerKey):
        return await repository.has_contract_with_practitioner(session, practitioner_id_or_org.practitioner_id,
                                                               resident_id, on)
    return await repository.has_contract_with_organization(session, practitioner_id_or_org.organization_id,
                                                           resident_id, on)


async def resident_or_422(session: AsyncSession, cipher: FieldCipher, resident_id: int, field: str) -> ResidentRead:
    """The resident a request body names, masked; 422 when the master index has none."""
    try:
        return await registry.resident_view(session, cipher, resident_id)
    except NotFound:
        raise ValidationFailed(f"{field}: no resident {resident_id} in the master index", field=field,
                               value=resident_id, rule="resident.unknown") from None


def one_year_after(day: date) -> date:
    """The same day a year later; 29 February's is 1 March (a contract year never runs short)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 3, 1)


def _read(row: FamilyContract) -> ContractRead:
    return ContractRead.model_validate(row)


def _active_conflict(current: FamilyContract) -> Conflict:
    return Conflict(
        f"resident {current.resident_id} already has contract {current.id} with team {current.team_id} until "
        f"{current.ends_on}; switch (转签) or cancel it first", code="family_contract_active",
        field="resident_ids", value=current.resident_id, rule="family.contract.one_active")


async def _contract_for(session: AsyncSession, principal: Principal | None, contract_id: int) -> FamilyContract:
    """The contract, locked, if its team is the caller's centre's; else 404."""
    row = await repository.contract(session, contract_id, lock=True)
    if row is not None:
        team = await repository.team(session, row.team_id)
        if team is not None and may_act_for(principal, team.organization_id):
            return row
    raise NotFound(f"family doctor contract {contract_id} not found", field="contract_id", value=contract_id,
                   rule="family.contract.exists")


async def _package(session: AsyncSession, package_id: int) -> None:
    package = await repository.package(session, package_id)
    if package is None or not package.is_active:
        raise ValidationFailed(f"no active service package {package_id}", field="package_id", value=package_id,
                               rule="family.package.active")


async def _expire(rows: dict[int, FamilyContract], today: date, clock: Clock) -> None:
    """A current contract whose year has ended is history: expired."""
    for resident_id, row in list(rows.items()):
        if row.ends_on <= today:
            row.status, row.updated_at = "expired", clock.now()
            del rows[resident_id]


async def _insert(session: AsyncSession, rows: list[FamilyContract]) -> None:
    try:
        async with session.begin_nested():
            for row in rows:
                await repository.add_contract(session, row)
    except IntegrityError as exc:  # a concurrent signing for one of these residents won the unique index
        raise Conflict("a resident of this signing got a contract meanwhile; ask again to see which",
                       code="family_contract_active", field="resident_ids", value=None,
                       rule="family.contract.one_active") from exc


async def sign(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
               data: ContractSign) -> list[ContractRead]:
    """Sign each resident (one, or a household) with the team for a year; nothing is written when one fails.

    The same signing again (same team, package and start) returns the contracts it made.
    """
    try:
        team = await team_for(session, principal, data.team_id)
    except NotFound:  # a reference in the body: 422, the same for another centre's team and none
        raise ValidationFailed(f"team_id: no team {data.team_id} of the caller's centre", field="team_id",
                               value=data.team_id, rule="family.team.exists") from None
    if not team.is_active:
        raise ValidationFailed(f"team {team.id} is deactivated", field="team_id", value=team.id,
                               rule="family.team.active")
    await _package(session, data.package_id)
    today = business_date(clock.now())
    starts_on = data.starts_on or today
    if starts_on < today:
        raise ValidationFailed(f"a contract cannot start in the past ({starts_on})", field="starts_on",
                               value=starts_on.isoformat(), rule="family.contract.not_backdated")
    if len(set(data.resident_ids)) != len(data.resident_ids):
        raise ValidationFailed("a resident is named twice", field="resident_ids", value=None,
                               rule="family.contract.resident_once")
    centre = await registry.get_organization(session, team.organization_id)
    areas = {}
    for resident_id in data.resident_ids:
        resident = await resident_or_422(session, cipher, resident_id, "resident_ids")
        areas[resident_id] = resident.address_area_code or centre.area_code or ""
    current = await repository.active_contracts(session, data.resident_ids)
    await _expire(current, today, clock)
    same = [row for row in current.values()
            if (row.team_id, row.package_id, row.starts_on) == (team.id, data.package_id, starts_on)]
    if len(same) == len(data.resident_ids):  # a retry of this signing: what it made, read again
        record(session, clock, principal, Action.READ, "family_contract", resource_id=same[0].id,
               resident_ids=data.resident_ids, detail="signing repeated")
        return [_read(row) for row in sorted(same, key=lambda r: data.resident_ids.index(r.resident_id))]
    for resident_id in data.resident_ids:
        row = current.get(resident_id)
        if row is None:
            continue
        if not data.switch:
            raise _active_conflict(row)
        if row.team_id == team.id:
            raise Conflict(f"resident {resident_id} is already signed with team {team.id} (contract {row.id})",
                           code="family_contract_same_team", field="team_id", value=team.id,
                           rule="family.contract.switch_to_another_team")
    now = clock.now()
    household_key = uuid.uuid4().hex if len(data.resident_ids) > 1 else None
    made = []
    for resident_id in data.resident_ids:
        previous = current.get(resident_id)
        if previous is not None:  # the switch: the old contract ends the day the new one starts
            previous.status, previous.updated_at = "switched", now
            previous.ended_on = max(starts_on, previous.starts_on)
            previous.end_reason = f"switched to team {team.id}"
        made.append(FamilyContract(
            resident_id=resident_id, team_id=team.id, package_id=data.package_id, household_key=household_key,
            area_code=areas[resident_id], starts_on=starts_on, ends_on=one_year_after(starts_on), status="active",
            previous_id=None if previous is None else previous.id, signed_by=_actor(principal),
            created_at=now, updated_at=now))
    await session.flush()  # the switched contracts leave the unique index before the new ones enter it
    await _insert(session, made)
    record(session, clock, principal, Action.CREATE, "family_contract", resource_id=made[0].id,
           resident_ids=data.resident_ids, detail="switch" if data.switch else None)
    return [_read(row) for row in made]


def _actor(principal: Principal | None) -> str:
    return "platform" if principal is None else principal.subject


async def renew(session: AsyncSession, clock: Clock, principal: Principal | None, contract_id: int,
                data: ContractRenew) -> ContractRead:
    """A new year with the same team from the day the current one ends; renewing again returns it."""
    row = await _contract_for(session, principal, contract_id)
    if row.status == "renewed":
        following = await repository.successor(session, row.id)
        if following is not None:
            return _read(following)
    if row.status != "active":
        raise Conflict(f"contract {row.id} is {row.status}; only the current contract is renewed",
                       code="family_contract_not_active", field="contract_id", value=row.id,
                       rule="family.contract.renew_active")
    today = business_date(clock.now())
    if (row.ends_on - today).days > RENEWAL_WINDOW_DAYS:
        raise Conflict(f"contract {row.id} runs until {row.ends_on}; it may be renewed from "
                       f"{RENEWAL_WINDOW_DAYS} days before", code="family_contract_too_early",
                       field="contract_id", value=row.id, rule="family.contract.renewal_window")
    package_id = data.package_id or row.package_id
    await _package(session, package_id)
    starts_on = max(row.ends_on, today)
    now = clock.now()
    row.status, row.updated_at = "renewed", now
    await session.flush()
    following = FamilyContract(
        resident_id=row.resident_id, team_id=row.team_id, package_id=package_id, household_key=row.household_key,
        area_code=row.area_code, starts_on=starts_on, ends_on=one_year_after(starts_on), status="active",
        previous_id=row.id, signed_by=_actor(principal), created_at=now, updated_at=now)
    await _insert(session, [following])
    record(session, clock, principal, Action.CREATE, "family_contract", resource_id=following.id,
           resident_ids=[row.resident_id], detail=f"renewal of {row.id}")
    return _read(following)


async def cancel(session: AsyncSession, clock: Clock, principal: Principal | None, contract_id: int,
                 data: ContractCancel) -> ContractRead:
    """End a contract early (解约) with a reason; cancelling it again returns it unchanged."""
    row = await _contract_for(session, principal, contract_id)
    if row.status == "cancelled":
        return _read(row)
    if row.status != "active":
        raise Conflict(f"contract {row.id} is {row.status}; only the current contract is cancelled",
                       code="family_contract_not_active", field="contract_id", value=row.id,
                       rule="family.contract.cancel_active")
    today = business_date(clock.now())
    ends_on = data.ends_on or today
    if ends_on < today or ends_on > row.ends_on:
        raise ValidationFailed(f"a cancellation takes effect between today ({today}) and the contract's end "
                               f"({row.ends_on})", field="ends_on", value=ends_on.isoformat(),
                               rule="family.contract.cancel_date")
    row.status, row.ended_on, row.end_reason = "cancelled", max(ends_on, row.starts_on), data.reason
    row.updated_at = clock.now()
    await session.flush()
    record(session, clock, principal, Action.UPDATE, "family_contract", resource_id=row.id,
           resident_ids=[row.resident_id], detail="cancelled")
    return _read(row)


async def get_contract(session: AsyncSession, clock: Clock, principal: Principal, contract_id: int) -> ContractRead:
    row = await _contract_for(session, principal, contract_id)
    record(session, clock, principal, Action.READ, "family_contract", resource_id=row.id,
           resident_ids=[row.resident_id])
    return _read(row)


async def my_contracts(session: AsyncSession, clock: Clock, principal: Principal) -> list[ContractRead]:
    """A resident's own contracts, the current one last."""
    if principal.resident_id is None:
        return []
    rows = await repository.contracts_of_resident(session, principal.resident_id)
    record(session, clock, principal, Action.LIST, "family_contract", resident_ids=[principal.resident_id])
    return [_read(row) for row in rows]


async def team_panel(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, team_id: int,
                     *, on: date | None, after_id: int, limit: int) -> list[PanelEntry]:
    """The residents a team's contracts cover on a day (today by default), masked, by contract id."""
    team = await team_for(session, principal, team_id)
    day = on or business_date(clock.now())
    rows = await repository.panel(session, team.id, day, after_id=after_id, limit=limit)
    entries = [PanelEntry(contract=_read(row), resident=await registry.resident_view(session, cipher, row.resident_id))
               for row in rows]
    record(session, clock, principal, Action.LIST, "family_panel", resource_id=team.id,
           resident_ids=[row.resident_id for row in rows])
    return entries


async def contract_rate(session: AsyncSession, clock: Clock, area_code: str, on: date | None) -> ContractRateRead:
    """Residents whose contract covers `on` (today by default) and counts in the area (or a district under it) ÷
    its population."""
    on = on or business_date(clock.now())
    area = await registry.require_area(session, area_code, field="area_code", must_be_active=False)
    codes = {area.code}
    if area.level in ("province", "city"):
        children = await registry.list_areas(session, parent_code=area.code, limit=1000)
        codes |= {child.code for child in children.items if child.level == "district"}
    signed = await repository.signed_residents(session, codes, on)
    population = await repository.population(session, area.code, on.year)
    rate = None
    if population is not None:
        rate = str((Decimal(100 * signed) / population.population).quantize(Decimal("0.01"), ROUND_HALF_UP))
    return ContractRateRead(area_code=area.code, on=on, signed_residents=signed,
                            population=None if population is None else population.population,
                            population_year=None if population is None else population.year, rate_percent=rate)
