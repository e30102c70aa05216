"""What a signed-in resident reads of their own care in the resident app: the family doctor, the chronic disease
follow-ups, the shared record (first page and timeline), the lab and exam reports, and who opened the record.

Always the caller's own resident (the principal's): there is no id to ask another resident's by. Each read
is audited against that resident, as the staff's reads are. The resident reading their own record makes no
entry in the record's access log: that log lists the clinicians who opened it (records/access.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.records import access, chronic_repository, family_repository, shared_record
from cityhealth.records.chronic_models import PROGRAMS
from cityhealth.records.chronic_schemas import FollowupRead, RegistrationRead
from cityhealth.records.family_schemas import ContractRead
from cityhealth.records.schemas import AccessRead, RecordView, TimelineItem
from cityhealth.registry import departments
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

FOLLOWUPS_SHOWN = 12  # the last three years at four a year
RESOURCE = "shared_record"
Cursor = tuple[datetime, int, str, str]


@dataclass(frozen=True)
class TeamMemberView:
    role: str
    name: str
    title: str | None


@dataclass(frozen=True)
class MyDoctor:
    """The resident's current contract (None: not signed), its team and package, and the earlier contracts."""

    current: ContractRead | None
    centre: str | None
    team: str | None
    members: list[TeamMemberView]
    package: str | None
    package_services: str | None
    days_left: int | None
    history: list[ContractRead]


@dataclass(frozen=True)
class MyProgram:
    registration: RegistrationRead
    followups: list[FollowupRead]  # newest first


async def my_doctor(session: AsyncSession, clock: Clock, principal: Principal) -> MyDoctor:
    resident_id = principal.resident_id
    rows = [] if resident_id is None else await family_repository.contracts_of_resident(session, resident_id)
    contracts = [ContractRead.model_validate(row) for row in rows]
    current = next((c for c in reversed(contracts) if c.status == "active"), None)
    history = [c for c in contracts if c is not current]
    record(session, clock, principal, Action.READ, "family_contract",
           resource_id=None if current is None else current.id, resident_ids=[resident_id],
           detail="resident app: my family doctor")
    if current is None:
        return MyDoctor(None, None, None, [], None, None, None, history)
    team = await family_repository.team(session, current.team_id)
    package = await family_repository.package(session, current.package_id)
    members: list[TeamMemberView] = []
    centre = None
    if team is not None:
        organization = await registry.organization_by_id(session, team.organization_id)
        centre = None if organization is None else organization.name
        for member in await family_repository.members(session, [team.id]):
            practitioner = await departments.get_practitioner(session, team.organization_id, member.practitioner_id)
            members.append(TeamMemberView(member.role, practitioner.name, practitioner.title))
    return MyDoctor(current, centre, None if team is None else team.name, members,
                    None if package is None else package.name, None if package is None else package.services,
                    (current.ends_on - business_date(clock.now())).days, history)


async def my_programs(session: AsyncSession, clock: Clock, principal: Principal) -> list[MyProgram]:
    """The resident's hypertension and diabetes registrations with their latest follow-ups."""
    resident_id = principal.resident_id
    found: list[MyProgram] = []
    if resident_id is not None:
        for program in PROGRAMS:
            row = await chronic_repository.registration_of(session, resident_id, program)
            if row is None:
                continue
            followups = await chronic_repository.followups(session, row.id)
            found.append(MyProgram(RegistrationRead.model_validate(row),
                                   [FollowupRead.model_validate(f) for f in reversed(followups)][:FOLLOWUPS_SHOWN]))
    record(session, clock, principal, Action.READ, "chronic_registration", resident_ids=[resident_id],
           detail="resident app: my readings and follow-ups")
    return found


def _own(principal: Principal) -> int | None:
    return principal.resident_id


async def my_record(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, *,
                    before: Cursor | None, limit: int) -> RecordView | None:
    """The resident's own shared record (None for an account without a resident: not found)."""
    resident_id = _own(principal)
    if resident_id is None:
        return None
    view = await shared_record.record_view(session, cipher, resident_id, before=before, limit=limit)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=resident_id, resident_ids=[resident_id],
           detail="resident app: my record")
    return view


async def my_results(session: AsyncSession, clock: Clock, principal: Principal, *, before: Cursor | None,
                     limit: int) -> tuple[list[TimelineItem], str | None]:
    """The resident's own lab and exam reports, newest first."""
    resident_id = _own(principal)
    if resident_id is None:
        return [], None
    found = await shared_record.reports(session, resident_id, before=before, limit=limit)
    record(session, clock, principal, Action.LIST, RESOURCE, resource_id=resident_id, resident_ids=[resident_id],
           detail=f"resident app: my results ({len(found[0])})")
    return found


async def my_access_log(session: AsyncSession, clock: Clock, principal: Principal, *, before_id: int | None,
                        limit: int) -> list[AccessRead]:
    """Who opened the resident's record, newest first (the records room's log, audited there)."""
    resident_id = _own(principal)
    if resident_id is None:
        return []
    return await access.access_log(session, clock, principal, resident_id, before_id=before_id, limit=limit)
