"""Remote pathology: the network's experts and doctors, and pathology cases. A pathology case is a generic case
(cases.py routes it, reading.py claims and reports on it) with its specimen and slide references beside it.

Object rules: an administrator registers and deactivates anyone, a member's own callers only their
organization's people; a pathology case is seen as cases.py says (its requester, or the centre it is routed
to), and every read of it is audited with its resident."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.config import Settings
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import cases
from cityhealth.telemed import pathology_repository as repository
from cityhealth.telemed.fingerprint import fingerprint
from cityhealth.telemed.pathology_models import PathologyCase, PathologyPerson
from cityhealth.telemed.pathology_schemas import (
    PathologyCaseIn,
    PathologyCaseRead,
    PathologyDetailRead,
    PersonDeactivate,
    PersonIn,
    PersonRead,
)
from cityhealth.telemed.repository import READING_ROLES, REQUESTING_ROLES
from cityhealth.telemed.schemas import CaseDetail, CaseSubmit

PERSON = "telemed_pathology_person"
# The member roles a person of each kind may belong to: experts read, doctors request.
ROLES_OF_KIND = {"expert": READING_ROLES, "doctor": REQUESTING_ROLES}


def is_active(person: PathologyPerson, at: datetime) -> bool:
    return person.registered_at <= at and (person.deactivated_at is None or person.deactivated_at > at)


def person_read(person: PathologyPerson, now: datetime) -> PersonRead:
    return PersonRead(
        id=person.id,
        key=person.key,
        kind=person.kind,
        organization_id=person.organization_id,
        member_id=person.member_id,
        name=person.name,
        title=person.title,
        specialty=person.specialty,
        registered_at=person.registered_at,
        deactivated_at=person.deactivated_at,
        active=is_active(person, now),
    )


def _may_manage(principal: Principal, organization_id: int) -> bool:
    return principal.has(Scope.TELEMED_ADMIN) or principal.organization_id == organization_id


async def register_person(session: AsyncSession, clock: Clock, principal: Principal, data: PersonIn) -> PersonRead:
    """Register an expert or doctor of a pathology member; the same registration again is the same person."""
    if not _may_manage(principal, data.organization_id):
        raise Forbidden(
            f"organization {principal.organization_id} registers only its own people",
            code="not_your_organization",
            field="organization_id",
            value=data.organization_id,
            rule="telemed.pathology.own_organization",
        )
    now = clock.now()
    digest = fingerprint(data)
    held = await repository.person_by_key(session, data.organization_id, data.key)
    if held is not None:
        return _repeated_person(session, clock, principal, held, digest, now)
    member = await repository.active_membership(session, data.organization_id, business_date(now))
    if member is None:
        raise ValidationFailed(
            f"organization_id: organization {data.organization_id} is not a member of the pathology network today",
            field="organization_id",
            value=data.organization_id,
            rule="telemed.pathology.person_member",
        )
    if member.role not in ROLES_OF_KIND[data.kind]:
        raise ValidationFailed(
            f"kind: organization {data.organization_id} is a pathology {member.role}; "
            f"an {data.kind} belongs to a member that is {' or '.join(ROLES_OF_KIND[data.kind])}",
            field="kind",
            value=data.kind,
            rule="telemed.pathology.person_role",
        )
    person_id = await repository.insert_person(
        session,
        {
            "organization_id": data.organization_id,
            "member_id": member.id,
            "key": data.key,
            "kind": data.kind,
            "name": data.name,
            "title": data.title,
            "specialty": data.specialty,
            "fingerprint": digest,
            "registered_at": now,
            "registered_by": principal.subject,
            "deactivated_at": None,
            "deactivated_by": None,
            "deactivation_reason": None,
        },
    )
    if person_id is None:  # a concurrent retry of this registration made it first
        held = await repository.person_by_key(session, data.organization_id, data.key)
        if held is None:
            raise Conflict(
                "the same person is being registered concurrently; retry",
                field="key",
                value=data.key,
                rule="telemed.pathology.person.same_key",
            )
        return _repeated_person(session, clock, principal, held, digest, now)
    record(session, clock, principal, Action.CREATE, PERSON, resource_id=person_id, detail=data.kind)
    return person_read(await _person(session, person_id), now)


def _repeated_person(
    session: AsyncSession, clock: Clock, principal: Principal, held: PathologyPerson, digest: str, now: datetime
) -> PersonRead:
    if held.fingerprint != digest:
        raise Conflict(
            f"organization {held.organization_id} registered {held.key} already with other details",
            field="key",
            value=held.key,
            rule="telemed.pathology.person.same_key",
        )
    record(session, clock, principal, Action.CREATE, PERSON, resource_id=held.id, detail="repeated")
    return person_read(held, now)


async def _person(session: AsyncSession, person_id: int) -> PathologyPerson:
    found = await repository.person(session, person_id)
    if found is None:
        raise NotFound(f"no person {person_id}", field="person_id", value=person_id, rule="telemed.pathology.person")
    return found


async def deactivate_person(
    session: AsyncSession, clock: Clock, principal: Principal, person_id: int, data: PersonDeactivate
) -> PersonRead:
    """The person leaves the network's roll from now; deactivating again changes nothing."""
    found = await _person(session, person_id)
    if not _may_manage(principal, found.organization_id):
        raise NotFound(f"no person {person_id}", field="person_id", value=person_id, rule="telemed.pathology.person")
    now = clock.now()
    if found.deactivated_at is None:
        await repository.deactivate_person(
            session,
            person_id,
            {"deactivated_at": now, "deactivated_by": principal.subject, "deactivation_reason": data.reason},
        )
        record(session, clock, principal, Action.DEACTIVATE, PERSON, resource_id=person_id)
        found = await _person(session, person_id)
    return person_read(found, now)


async def list_people(
    session: AsyncSession,
    clock: Clock,
    *,
    kind: str | None,
    organization_id: int | None,
    active: bool | None,
    limit: int,
) -> list[PersonRead]:
    """The network's roll of experts and doctors (no patient in it)."""
    now = clock.now()
    found = await repository.people(session, kind=kind, organization_id=organization_id, active=active, limit=limit)
    return [person_read(p, now) for p in found]


# --- cases --------------------------------------------------------------------------------------------------


def _detail_read(detail: PathologyCase) -> PathologyDetailRead:
    return PathologyDetailRead(
        requesting_doctor_id=detail.requesting_doctor_id,
        specimen_site=detail.specimen_site,
        specimen_kind=detail.specimen_kind,
        slide_count=detail.slide_count,
        block_count=detail.block_count,
        slide_refs=list(detail.slide_refs),
    )


async def _check_doctor(session: AsyncSession, principal: Principal, doctor_id: int, now: datetime) -> None:
    doctor = await repository.person(session, doctor_id)
    if (
        doctor is None
        or doctor.kind != "doctor"
        or doctor.organization_id != principal.organization_id
        or not is_active(doctor, now)
    ):
        raise ValidationFailed(
            f"requesting_doctor_id: person {doctor_id} is not an active pathology doctor of the submitting hospital",
            field="requesting_doctor_id",
            value=doctor_id,
            rule="telemed.pathology.case_doctor",
        )


async def submit_case(
    session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, data: PathologyCaseIn
) -> PathologyCaseRead:
    """A member hospital's pathology case, routed at once as every case is; the same submission again is the
    same case, one with changed details 409."""
    if data.requesting_doctor_id is not None:
        await _check_doctor(session, principal, data.requesting_doctor_id, clock.now())
    case = await cases.submit(
        session,
        clock,
        settings,
        principal,
        CaseSubmit(
            network_code="pathology",
            external_id=data.external_id,
            case_type="pathology_case",
            priority=data.priority,
            resident_id=data.resident_id,
            clinical_question=data.clinical_summary,
        ),
    )
    digest = fingerprint(data)
    written = await repository.insert_detail(
        session,
        {
            "case_id": case.id,
            "requesting_doctor_id": data.requesting_doctor_id,
            "specimen_site": data.specimen_site,
            "specimen_kind": data.specimen_kind,
            "slide_count": data.slide_count,
            "block_count": data.block_count,
            "slide_refs": data.slide_refs,
            "fingerprint": digest,
        },
    )
    detail = await repository.detail(session, case.id)
    if detail is None or (not written and detail.fingerprint != digest):
        raise Conflict(
            f"pathology case {data.external_id} was submitted already with other details",
            field="external_id",
            value=data.external_id,
            rule="telemed.pathology.same_submission",
        )
    return PathologyCaseRead(case=case, pathology=_detail_read(detail))


async def get_case(session: AsyncSession, clock: Clock, principal: Principal, case_id: int) -> PathologyCaseRead:
    """A pathology case with its specimen and slides, to its requester or the centre it is routed to."""
    await cases.visible(session, principal, case_id)  # the object rule, before anything is told
    detail = await repository.detail(session, case_id)
    if detail is None:
        raise NotFound(
            f"case {case_id} is not a pathology case", field="case_id", value=case_id, rule="telemed.pathology.case"
        )
    found: CaseDetail = await cases.get_case(session, clock, principal, case_id)  # audited with its resident
    return PathologyCaseRead(case=found, pathology=_detail_read(detail))
