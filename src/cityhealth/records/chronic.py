"""Chronic disease registers (hypertension, type 2 diabetes) and their follow-ups.

A resident enters a register once per programme, by one of three doors, all through `register`: a diagnosis in
the linked records (the linkage calls it with the diagnosing organization), a public-health follow-up uploaded by
a district platform (`upload_followup`, the resident found by the keyed hash of their ID number), or a centre's
own entry. A registration is managed by the centre of the resident's family doctor contract when there is one.
Each follow-up is checked against the physiological ranges, classified, and sets the next due date
(chronic_rules.py). Every write is idempotent: the same registration or follow-up again changes nothing.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.records import chronic_repository as repository
from cityhealth.records import chronic_rules as rules
from cityhealth.records import family_repository
from cityhealth.records.chronic_models import ChronicFollowup, ChronicRegistration
from cityhealth.records.chronic_schemas import (
    FollowupIn,
    FollowupRead,
    FollowupUpload,
    Readings,
    RegistrationIn,
    RegistrationRead,
)
from cityhealth.records.family_doctors import resident_or_422
from cityhealth.records.family_teams import COMMUNITY_HEALTH_CENTRE, may_act_for
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

# ICD-10 categories that put a resident on a register: essential and secondary hypertension (I10–I15), type 2
# diabetes (E11). Type 1 and other diabetes are not in the basic public health service's programme.
_HYPERTENSION = re.compile(r"^I1[0-5](\.|$)")
_DIABETES = re.compile(r"^E11(\.|$)")


def program_of_diagnosis(icd10_code: str) -> str | None:
    """The register an ICD-10 diagnosis enters a resident on, or None."""
    code = icd10_code.strip().upper()
    if _HYPERTENSION.match(code):
        return "hypertension"
    if _DIABETES.match(code):
        return "diabetes"
    return None


def _registration_not_found(registration_id: int) -> NotFound:
    return NotFound(f"chronic disease registration {registration_id} not found", field="registration_id",
                    value=registration_id, rule="chronic.registration.exists")


async def registration_for(session: AsyncSession, principal: Principal | None, registration_id: int, *,
                           lock: bool = False) -> ChronicRegistration:
    """The registration, if the caller acts for its managing centre; else 404."""
    row = await repository.registration(session, registration_id, lock=lock)
    if row is None or not may_act_for(principal, row.organization_id):
        raise _registration_not_found(registration_id)
    return row


async def register(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None, *,
                   resident_id: int, program: str, registered_on: date, organization_id: int, source: str,
                   source_ref: str | None) -> RegistrationRead:
    """Enter a resident on a programme's register; a resident already on it stays as they are (the earliest
    entry counts). The caller audits with its own reason when it acts for a person; this audits the entry."""
    existing = await repository.registration_of(session, resident_id, program)
    if existing is not None:
        return RegistrationRead.model_validate(existing)
    resident = await resident_or_422(session, cipher, resident_id, "resident_id")
    today = business_date(clock.now())
    contracted = await family_repository.teams_on(session, [resident_id], today)
    managing = organization_id
    if resident_id in contracted:
        team = await family_repository.team(session, contracted[resident_id])
        managing = team.organization_id if team is not None else organization_id
    centre = await registry.get_organization(session, managing)
    now = clock.now()
    row = ChronicRegistration(
        resident_id=resident_id, program=program, registered_on=registered_on, source=source, source_ref=source_ref,
        organization_id=managing, area_code=resident.address_area_code or centre.area_code or "",
        next_due_on=registered_on, created_at=now, updated_at=now)
    try:
        async with session.begin_nested():
            await repository.add(session, row)
    except IntegrityError:  # registered meanwhile by another door: that entry stands
        existing = await repository.registration_of(session, resident_id, program)
        if existing is None:
            raise
        return RegistrationRead.model_validate(existing)
    record(session, clock, principal, Action.CREATE, "chronic_registration", resource_id=row.id,
           resident_ids=[resident_id], detail=f"{program} by {source}")
    return RegistrationRead.model_validate(row)


async def register_at_centre(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                             data: RegistrationIn) -> RegistrationRead:
    """A centre's staff enter a resident on a register for their own centre."""
    if principal.organization_id is None:
        raise ValidationFailed("only a centre's staff register residents at a centre", field="organization_id",
                               value=None, rule="chronic.registration.centre_staff")
    await _centre(session, principal.organization_id, "organization_id")
    if data.diagnosis_code is not None and program_of_diagnosis(data.diagnosis_code) != data.program:
        raise ValidationFailed(f"diagnosis {data.diagnosis_code} does not belong to the {data.program} register",
                               field="diagnosis_code", value=data.diagnosis_code, rule="chronic.registration.diagnosis")
    return await register(session, clock, cipher, principal, resident_id=data.resident_id, program=data.program,
                          registered_on=data.registered_on or business_date(clock.now()),
                          organization_id=principal.organization_id, source="clinic", source_ref=data.diagnosis_code)


async def register_from_diagnosis(session: AsyncSession, clock: Clock, cipher: FieldCipher, *, resident_id: int,
                                  icd10_code: str, diagnosed_on: date, organization_id: int,
                                  record_ref: str) -> RegistrationRead | None:
    """For the linkage: a linked diagnosis of hypertension or type 2 diabetes enters the resident on its register
    (None for any other diagnosis). The linkage audits its own work; this audits the entry as the platform's."""
    program = program_of_diagnosis(icd10_code)
    if program is None:
        return None
    return await register(session, clock, cipher, None, resident_id=resident_id, program=program,
                          registered_on=diagnosed_on, organization_id=organization_id, source="diagnosis",
                          source_ref=f"{icd10_code} {record_ref}"[:96])


async def _centre(session: AsyncSession, organization_id: int, field: str) -> None:
    organization = await registry.get_organization(session, organization_id)
    if organization.kind != COMMUNITY_HEALTH_CENTRE:
        raise ValidationFailed(f"follow-ups are made by community health centres; organization {organization_id} "
                               f"is a {organization.kind}", field=field, value=organization.code,
                               rule="chronic.followup.community_health_centre")


def _readings(data: Readings) -> rules.Readings:
    return rules.Readings(sbp=data.sbp, dbp=data.dbp, fbg_mmol_l=data.fbg_mmol_l,
                          adverse_reaction=data.adverse_reaction, new_complication=data.new_complication)


async def _add_followup(session: AsyncSession, clock: Clock, registration: ChronicRegistration, data: Readings,
                        source_key: str, organization_id: int) -> ChronicFollowup:
    readings = _readings(data)
    previous = await repository.followup_before(session, registration.id, data.visit_date)
    previous_controlled = None if previous is None else rules.is_controlled(registration.program, _stored(previous))
    assessment = rules.assess(registration.program, readings, data.visit_date,
                              previous_controlled=previous_controlled)
    latest = await repository.latest_visit(session, registration.id)
    row = ChronicFollowup(
        registration_id=registration.id, source_key=source_key, organization_id=organization_id,
        visit_date=data.visit_date, sbp=data.sbp, dbp=data.dbp, fbg_mmol_l=data.fbg_mmol_l,
        adverse_reaction=data.adverse_reaction, new_complication=data.new_complication,
        classification=assessment.classification, next_step=assessment.next_step, due_on=assessment.due_on,
        created_at=clock.now())
    await repository.add(session, row)
    if latest is None or data.visit_date >= latest:  # a late upload of an older visit leaves the due date be
        registration.next_due_on, registration.updated_at = assessment.due_on, clock.now()
    return row


def _stored(row: ChronicFollowup) -> rules.Readings:
    return rules.Readings(sbp=row.sbp, dbp=row.dbp, fbg_mmol_l=row.fbg_mmol_l,
                          adverse_reaction=row.adverse_reaction, new_complication=row.new_complication)


def _check_visit(clock: Clock, program: str, data: Readings) -> None:
    """Nothing is written for a visit with impossible readings or a date to come."""
    rules.check_readings(program, _readings(data))
    if data.visit_date > business_date(clock.now()):
        raise ValidationFailed(f"visit date {data.visit_date} is in the future", field="visit_date",
                               value=data.visit_date.isoformat(), rule="chronic.followup.not_future")


async def _same_again(session: AsyncSession, source_key: str, registration_id: int,
                      data: Readings) -> ChronicFollowup | None:
    existing = await repository.followup_by_key(session, source_key)
    if existing is None:
        return None
    same = (existing.registration_id, existing.visit_date, existing.sbp, existing.dbp, existing.fbg_mmol_l,
            existing.adverse_reaction, existing.new_complication) == (
        registration_id, data.visit_date, data.sbp, data.dbp, data.fbg_mmol_l, data.adverse_reaction,
        data.new_complication)
    if not same:
        raise Conflict(f"follow-up {source_key} was already recorded with other readings", code="followup_changed",
                       field="key", value=source_key, rule="chronic.followup.same_key_same_visit")
    return existing


async def record_followup(session: AsyncSession, clock: Clock, principal: Principal, registration_id: int,
                          data: FollowupIn) -> FollowupRead:
    """A follow-up made at the registration's centre; the same key and readings again return it."""
    registration = await registration_for(session, principal, registration_id, lock=True)
    _check_visit(clock, registration.program, data)
    source_key = f"registration:{registration.id}:{data.key}"
    row = await _same_again(session, source_key, registration.id, data)
    if row is None:
        row = await _add_followup(session, clock, registration, data, source_key, registration.organization_id)
    record(session, clock, principal, Action.CREATE, "chronic_followup", resource_id=row.id,
           resident_ids=[registration.resident_id])
    return FollowupRead.model_validate(row)


async def upload_followup(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                          data: FollowupUpload) -> FollowupRead:
    """A district platform's public-health follow-up: the resident found by ID number (keyed hash), entered on
    the register if not yet on it, the follow-up recorded once per uploader and record id."""
    number = registry.parse_id_number(data.id_number, clock, field="id_number")
    hashed = registry.id_number_hash(cipher, clock, number.number)
    found = await registry.resident_ids_by_id_number_hash(session, [hashed] if hashed else [])
    if hashed is None or hashed not in found:
        raise ValidationFailed("no resident of the master index has this ID number", field="id_number",
                               value=number.masked, rule="chronic.upload.resident_unknown")
    resident_id = found[hashed]
    centre = await registry.organization_by_code(session, data.organization_code)
    if centre is None:
        raise ValidationFailed(f"no organization has code {data.organization_code}", field="organization_code",
                               value=data.organization_code, rule="chronic.upload.organization_unknown")
    await _centre(session, centre.id, "organization_code")
    _check_visit(clock, data.program, data)
    registration_read = await register(
        session, clock, cipher, principal, resident_id=resident_id, program=data.program,
        registered_on=data.visit_date, organization_id=centre.id, source="followup_upload",
        source_ref=data.record_id)
    registration = await repository.registration(session, registration_read.id, lock=True)
    if registration is None:  # entered just above, in this transaction
        raise _registration_not_found(registration_read.id)
    source_key = f"upload:{principal.organization_id or principal.subject}:{data.record_id}"
    row = await _same_again(session, source_key, registration.id, data)
    if row is None:
        row = await _add_followup(session, clock, registration, data, source_key, centre.id)
    record(session, clock, principal, Action.CREATE, "chronic_followup", resource_id=row.id,
           resident_ids=[resident_id], detail="upload")
    return FollowupRead.model_validate(row)


async def get_registration(session: AsyncSession, clock: Clock, principal: Principal,
                           registration_id: int) -> tuple[RegistrationRead, list[FollowupRead]]:
    registration = await registration_for(session, principal, registration_id)
    followups = await repository.followups(session, registration.id)
    record(session, clock, principal, Action.READ, "chronic_registration", resource_id=registration.id,
           resident_ids=[registration.resident_id])
    return (RegistrationRead.model_validate(registration),
            [FollowupRead.model_validate(row) for row in followups])
