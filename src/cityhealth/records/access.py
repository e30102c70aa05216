"""Who may open a resident's shared record (调阅), and the log of every opening.

A clinician (a staff principal of an organization, scope records.open) opens it only on a reason the platform
checks itself. The reasons are the list REASONS, asked in order; each answers with a reference to its evidence
(the booking, the encounter, the family-doctor contract, the consent) or None. With none, the answer is
not-found — the same answer as for a resident who does not exist — and the refusal is audited. An emergency
opening (break-glass) needs a written justification and is listed for review. Every opening is written to the
resident's access log, which the resident reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking
from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.records import repository
from cityhealth.records.family_doctors import OrganizationKey, has_active_contract
from cityhealth.records.models import AccessLogEntry, Consent
from cityhealth.records.schemas import AccessRead, ConsentIn, ConsentRead
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "shared_record"
BOOKING_DAYS_BEFORE = 30  # a booking of the past month, or of the coming week, is a reason
BOOKING_DAYS_AFTER = 7
VISIT_HOURS = 24  # an outpatient visit is open for a day


class AccessReason(Protocol):
    """A reason a clinician's organization may open a resident's record, and how the platform checks it."""

    kind: str  # stored in the access log (records_access_log.reason_kind)

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None: ...


class BookingAtOrganization:
    """A live booking of the resident at the organization, from a month back to a week ahead."""

    kind = "booking"

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None:
        today = business_date(clock.now())
        found = await booking.booking_at_organization(session, resident_id, organization_id,
                                                      today - timedelta(days=BOOKING_DAYS_BEFORE),
                                                      today + timedelta(days=BOOKING_DAYS_AFTER))
        return f"booking:{found}" if found is not None else None


class OpenEncounterAtOrganization:
    """An admission at the organization not yet discharged, or an outpatient visit there within a day, among the
    resident's linked records."""

    kind = "open_encounter"

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None:
        admission = await repository.open_admission(session, resident_id, organization_id)
        if admission is not None:
            return f"admission:{admission}"
        visit = await repository.visit_since(session, resident_id, organization_id,
                                             clock.now() - timedelta(hours=VISIT_HOURS))
        return f"visit:{visit}" if visit is not None else None


class FamilyDoctorContract:
    """A family-doctor contract of the resident, in force today, with a team of the organization (a centre)."""

    kind = "family_doctor"

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None:
        if await has_active_contract(session, OrganizationKey(organization_id), resident_id, clock.now()):
            return f"family_contract:organization:{organization_id}"
        return None


class ResidentConsent:
    """The resident's own consent for the organization, not revoked and not expired."""

    kind = "consent"

    async def evidence(self, session: AsyncSession, clock: Clock, organization_id: int,
                       resident_id: int) -> str | None:
        found = await repository.live_consent(session, resident_id, organization_id, clock.now())
        return f"consent:{found}" if found is not None else None


REASONS: list[AccessReason] = [BookingAtOrganization(), OpenEncounterAtOrganization(), FamilyDoctorContract(),
                                ResidentConsent()]


class NoReason(NotFound):
    """Not-found for a record the caller may not open; the API audits it after the request's rollback."""

    def __init__(self, resident_id: int) -> None:
        super().__init__("no such shared record", code="shared_record_not_found", field="resident_id",
                         value=resident_id)
        self.resident_id = resident_id


async def checked_opening(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int,
                          reasons: list[AccessReason] | None = None) -> AccessLogEntry:
    """The access-log entry of an opening on the first reason that holds; NoReason when none does."""
    organization_id = principal.organization_id
    if organization_id is None or await registry.resident_traits(session, resident_id) is None:
        raise NoReason(resident_id)
    for reason in REASONS if reasons is None else reasons:
        reference = await reason.evidence(session, clock, organization_id, resident_id)
        if reference is not None:
            return await _logged(session, clock, principal, resident_id, organization_id, reason.kind, reference)
    raise NoReason(resident_id)


async def break_glass(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int,
                      justification: str) -> AccessLogEntry:
    """An emergency opening without a checked reason: logged with its justification, listed for review."""
    if principal.organization_id is None or await registry.resident_traits(session, resident_id) is None:
        raise NoReason(resident_id)
    return await _logged(session, clock, principal, resident_id, principal.organization_id, "break_glass",
                         justification)


async def _logged(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int, organization_id: int,
                  kind: str, reference: str) -> AccessLogEntry:
    entry = AccessLogEntry(resident_id=resident_id, accessor=principal.subject, organization_id=organization_id,
                           reason_kind=kind, reason_ref=reference, opened_at=clock.now())
    repository.add(session, entry)
    await session.flush()
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=resident_id, resident_ids=[resident_id],
           detail=f"opened on {kind}" + ("" if kind == "break_glass" else f" {reference}"))
    return entry


def refusal_detail(resident_id: int) -> str:
    return f"no checked reason to open resident {resident_id}'s shared record"


async def access_log(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int, *,
                     before_id: int | None, limit: int) -> list[AccessRead]:
    """Who opened a resident's record, newest first (the resident's own, or an auditor's read)."""
    rows = await repository.access_log(session, resident_id, before_id, limit)
    record(session, clock, principal, Action.LIST, "shared_record_access_log", resource_id=resident_id,
           resident_ids=[resident_id], detail=f"{len(rows)} entries")
    return await _reads(session, rows)


async def break_glass_openings(session: AsyncSession, clock: Clock, principal: Principal, *, unreviewed: bool,
                               limit: int) -> list[AccessRead]:
    rows = await repository.break_glass_entries(session, unreviewed=unreviewed, limit=limit)
    record(session, clock, principal, Action.LIST, "shared_record_access_log",
           resident_ids={row.resident_id for row in rows}, detail=f"break-glass openings: {len(rows)}")
    return await _reads(session, rows)


async def review_break_glass(session: AsyncSession, clock: Clock, principal: Principal, entry_id: int,
                             note: str) -> AccessRead:
    """Mark a break-glass opening reviewed, with the reviewer's finding; a reviewed one is not reviewed again."""
    entry = await repository.lock_access_entry(session, entry_id)
    if entry is None or entry.reason_kind != "break_glass":
        raise NotFound("no such break-glass opening", code="break_glass_not_found", field="entry_id", value=entry_id)
    if entry.reviewed_at is not None:
        raise Conflict("this opening is already reviewed", code="break_glass_reviewed", field="entry_id",
                       value=entry_id, rule="break_glass.review_once")
    entry.reviewed_at, entry.reviewed_by, entry.review_note = clock.now(), principal.subject, note
    await session.flush()
    record(session, clock, principal, Action.UPDATE, "shared_record_access_log", resource_id=entry_id,
           resident_ids=[entry.resident_id], detail="break-glass reviewed")
    return (await _reads(session, [entry]))[0]


async def _reads(session: AsyncSession, rows: list[AccessLogEntry]) -> list[AccessRead]:
    names = await registry.organization_names(session, {row.organization_id for row in rows})
    return [AccessRead(id=row.id, resident_id=row.resident_id, accessor=row.accessor,
                       organization_id=row.organization_id, organization_name=names.get(row.organization_id),
                       reason_kind=row.reason_kind, reason_ref=row.reason_ref, opened_at=row.opened_at,
                       reviewed_at=row.reviewed_at, reviewed_by=row.reviewed_by, review_note=row.review_note)
            for row in rows]


# --- the resident's consents ---------------------------------------------------------------------------------


def _consent_read(row: Consent) -> ConsentRead:
    return ConsentRead(id=row.id, organization_id=row.organization_id, granted_at=row.granted_at,
                       expires_at=row.expires_at, revoked_at=row.revoked_at)


async def grant_consent(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int,
                        data: ConsentIn) -> ConsentRead:
    """The resident lets one organization's clinicians open the record for `days` days."""
    if await registry.organization_by_id(session, data.organization_id) is None:
        raise ValidationFailed("no organization has this id", code="organization_unknown", field="organization_id",
                               value=data.organization_id, rule="organization.unknown")
    now = clock.now()
    row = Consent(resident_id=resident_id, organization_id=data.organization_id, granted_at=now,
                  expires_at=now + timedelta(days=data.days), granted_by=principal.subject)
    repository.add(session, row)
    await session.flush()
    record(session, clock, principal, Action.CREATE, "shared_record_consent", resource_id=row.id,
           resident_ids=[resident_id], detail=f"organization {data.organization_id}, {data.days} days")
    return _consent_read(row)


async def consents(session: AsyncSession, resident_id: int) -> list[ConsentRead]:
    return [_consent_read(row) for row in await repository.consents_of(session, resident_id)]


async def revoke_consent(session: AsyncSession, clock: Clock, principal: Principal, resident_id: int,
                         consent_id: int) -> ConsentRead:
    """End a consent now (a revoked one stays revoked at its first time)."""
    row = await repository.consent(session, consent_id)
    if row is None or row.resident_id != resident_id:
        raise NotFound("no such consent", code="consent_not_found", field="consent_id", value=consent_id)
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        await session.flush()
        record(session, clock, principal, Action.UPDATE, "shared_record_consent", resource_id=row.id,
               resident_ids=[resident_id], detail="revoked")
    return _consent_read(row)
