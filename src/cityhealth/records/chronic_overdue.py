"""The family doctor's overdue list: patients whose follow-up is due soon or overdue, the calls made about them.

A patient is `due` from `DUE_SOON_DAYS` before their next due date until it, `overdue` after it. A call records
its outcome against the due date it was about; a `removed` call (with its reason) takes the patient off the list
until a new follow-up sets a new due date. A patient who died or moved away also leaves the register.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Forbidden, NotFound, ValidationFailed
from cityhealth.records import chronic_repository as repository
from cityhealth.records.chronic import registration_for
from cityhealth.records.chronic_models import ChronicCall
from cityhealth.records.chronic_schemas import CallIn, CallRead, OverdueEntry, RegistrationRead
from cityhealth.records.family_teams import team_for
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

DUE_SOON_DAYS = 7
# Reasons that end the patient's management at this centre, not only this due date's calls.
LEAVES_REGISTER = frozenset({"died", "moved_away"})


async def overdue_list(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal, *,
                       team_id: int | None, limit: int) -> list[OverdueEntry]:
    """The caller's centre's patients due within a week or overdue, the longest overdue first (masked, audited);
    with `team_id`, only the residents contracted to that team."""
    if principal.organization_id is None:
        raise Forbidden("the overdue list is a centre's; the caller acts for none", code="not_a_centre",
                        field="organization_id", value=None, rule="chronic.overdue.centre")
    if team_id is not None:
        try:
            await team_for(session, principal, team_id)
        except NotFound:  # a query parameter: 422, the same for another centre's team and none
            raise ValidationFailed(f"team_id: no team {team_id} of the caller's centre", field="team_id",
                                   value=team_id, rule="family.team.exists") from None
    today = business_date(clock.now())
    rows = await repository.due_list(session, principal.organization_id, today + timedelta(days=DUE_SOON_DAYS),
                                     team_id=team_id, on=today, limit=limit)
    calls = await repository.last_calls(session, [(row.id, row.next_due_on) for row in rows])
    entries = [OverdueEntry(
        registration=RegistrationRead.model_validate(row),
        resident=await registry.resident_view(session, cipher, row.resident_id),
        status="overdue" if row.next_due_on < today else "due",
        days_overdue=max((today - row.next_due_on).days, 0), last_call_outcome=calls.get(row.id)) for row in rows]
    record(session, clock, principal, Action.LIST, "chronic_overdue_list", resource_id=principal.organization_id,
           resident_ids=[row.resident_id for row in rows])
    return entries


async def record_call(session: AsyncSession, clock: Clock, principal: Principal, registration_id: int,
                      data: CallIn) -> CallRead:
    """The outcome of a call about the patient's current due date; the same outcome again returns the first."""
    if (data.outcome == "removed") != (data.removal_reason is not None):
        raise ValidationFailed("a removal names its reason, and only a removal does", field="removal_reason",
                               value=data.removal_reason, rule="chronic.call.removed_with_reason")
    registration = await registration_for(session, principal, registration_id, lock=True)
    existing = await repository.call_about(session, registration.id, registration.next_due_on, data.outcome,
                                           data.removal_reason)
    if existing is not None:
        return CallRead.model_validate(existing)
    if registration.removed_on is not None:
        raise ValidationFailed(f"registration {registration.id} left the register on {registration.removed_on}",
                               field="registration_id", value=registration.id, rule="chronic.call.on_register")
    now = clock.now()
    row = ChronicCall(registration_id=registration.id, due_on=registration.next_due_on, outcome=data.outcome,
                      removal_reason=data.removal_reason, called_by=principal.subject, called_at=now)
    await repository.add(session, row)
    if data.removal_reason in LEAVES_REGISTER:
        registration.removed_on, registration.removal_reason = business_date(now), data.removal_reason
        registration.updated_at = now
    record(session, clock, principal, Action.CREATE, "chronic_call", resource_id=row.id,
           resident_ids=[registration.resident_id], detail=data.outcome)
    return CallRead.model_validate(row)
