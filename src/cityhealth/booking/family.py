"""Booking for a family member the resident manages (a child, an elderly parent), with that member's consent.

The member is a resident of the master index; the link records who consented, when and how — a minor's
guardian declares it when linking, an adult confirms through their own account or staff record the consent
the member gave them — and either side may revoke it. A booking made through a live link is the member's:
the real-name rules, the caps and the member's sanctions apply as if the member booked; the manager is
recorded as its maker (`created_by`) and in the audit trail, and both see it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from cityhealth.booking import family_repository, repository, waitlist
from cityhealth.booking.attempts import RESOURCE, booking_read
from cityhealth.booking.channels import Caller, caller_of
from cityhealth.booking.models import FamilyLink
from cityhealth.booking.schemas import (
    BookingRead,
    ConsentRecord,
    FamilyLinkRead,
    FamilyMemberCreate,
    WaitlistCreate,
    WaitlistRead,
)
from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.registry.identifiers import IdentifierError, mask_resident_id, parse_resident_id
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal

LINK = "booking_family_link"
ADULT_AGE = 18


def mask_name(name: str) -> str:
    """张三丰 → 张**: the family name stays, as on a clinic's screen."""
    return name[:1] + "*" * (len(name) - 1)


def masked_id_number(cipher: FieldCipher, resident: Resident) -> str:
    return mask_resident_id(cipher.decrypt(ID_NUMBER, resident.id_number_enc))


def _age(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def _resident_caller(principal: Principal) -> Caller:
    caller = caller_of(principal)
    if caller.resident_id is None:
        raise ValidationFailed("only a resident manages family members", code="resident_only", field="principal",
                               rule="booking.family.resident_only")
    return caller


def _not_found(link_id: int) -> NotFound:
    return NotFound(f"no family link {link_id}", code="family_link_not_found", field="link_id", value=link_id)


NEEDS_MEMBER_CONSENT = "needs_member_consent"


def _status(status: str, basis: str | None, birth_date: date, now: datetime) -> str:
    """The link's status as it stands at `now`, the one the booking rule (`member_caller`) reads too: a
    guardian's declaration for a member now of age is no live consent, so the link shows
    `needs_member_consent` from the 18th birthday (Asia/Shanghai) until the adult gives their own (the row
    changes only then: the clock, not a job, decides). `pending` stays for an adult's new link."""
    return NEEDS_MEMBER_CONSENT if status == "active" and _come_of_age(basis, birth_date, now) else status


async def _view(session: AsyncSession, cipher: FieldCipher, link: FamilyLink, role: str,
                now: datetime) -> FamilyLinkRead:
    people = await family_repository.residents(session, (link.manager_resident_id, link.member_resident_id))
    manager, member = people[link.manager_resident_id], people[link.member_resident_id]
    return FamilyLinkRead.model_validate({
        "id": link.id, "role": role, "relationship": link.relationship,
        "status": _status(link.status, link.consent_basis, member.birth_date, now),
        "consent_basis": link.consent_basis, "consented_at": link.consented_at, "revoked_at": link.revoked_at,
        "manager_name": mask_name(manager.name), "member_name": mask_name(member.name),
        "member_id_number": masked_id_number(cipher, member)})


def _audit(session: AsyncSession, clock: Clock, principal: Principal, action: Action, link: FamilyLink,
           detail: str) -> None:
    # One event per resident concerned: each sees, in their own log, who acted on the link.
    record(session, clock, principal, action, LINK, resource_id=link.id,
           resident_ids=[link.manager_resident_id, link.member_resident_id], detail=detail)


async def add_member(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                     data: FamilyMemberCreate) -> tuple[FamilyLinkRead, bool]:
    """Link a family member (real-name checked); a minor's link is live on the guardian's declaration, an
    adult's waits for the member's confirmation. Linking again returns the live or pending link."""
    caller = _resident_caller(principal)
    manager_id = caller.resident_id
    assert manager_id is not None  # noqa: S101 - _resident_caller checked it
    now = clock.now()
    today = business_date(now)
    try:
        number = parse_resident_id(data.id_number, today=today).number
    except IdentifierError as exc:
        raise ValidationFailed(exc.message, code="invalid_id_number", field="id_number",
                               value=mask_resident_id(data.id_number), rule=exc.rule) from exc
    member = await family_repository.resident_by_id_hash(session, cipher.lookup_hash(ID_NUMBER, number))
    if member is None or not member.is_active or member.name != data.name:
        # One answer for "no such resident" and "another name": neither can be probed.
        raise ValidationFailed("the ID number and name do not match a resident of the master patient index",
                               code="real_name_check_failed", field="name", rule="booking.family.real_name")
    if member.id == manager_id:
        raise ValidationFailed("a resident books for themselves without a family link", code="family_self",
                               field="id_number", value=mask_resident_id(number), rule="booking.family.not_self")
    minor = _age(member.birth_date, today) < ADULT_AGE
    if minor and not data.guardian_declaration:
        raise ValidationFailed("a minor's link needs the guardian's declaration", code="guardian_declaration_required",
                               field="guardian_declaration", value=False, rule="booking.family.minor_consent")
    if not minor and data.guardian_declaration:
        raise ValidationFailed("an adult consents through their own account or in person, not by a guardian's "
                               "declaration", code="adult_consents_in_person", field="guardian_declaration",
                               value=True, rule="booking.family.adult_consent")
    link = await family_repository.link_of_pair(session, manager_id, member.id)
    if link is not None and link.status != "revoked":
        _audit(session, clock, principal, Action.READ, link, "already linked")
        return await _view(session, cipher, link, "manager", now), False
    if link is None:
        link = FamilyLink(manager_resident_id=manager_id, member_resident_id=member.id, created_by=principal.subject,
                          created_at=now)
    link.relationship, link.status, link.updated_at = data.relationship, "pending", now
    link.consent_basis = link.consented_by = link.consented_at = link.consent_note = None
    link.revoked_by = link.revoked_at = None
    if minor:
        link.status, link.consent_basis, link.consented_by, link.consented_at = (
            "active", "guardian_declaration", principal.subject, now)
    try:
        async with session.begin_nested():
            session.add(link)
            await session.flush()
    except IntegrityError as exc:  # a concurrent link of the same pair won; the retry finds it
        raise Conflict("this family member is being linked by another request; retry", code="family_link_in_flight",
                       field="id_number", rule="booking.family.one_link") from exc
    _audit(session, clock, principal, Action.CREATE, link,
           "linked: guardian declaration" if minor else "linked: awaiting the member's consent")
    return await _view(session, cipher, link, "manager", now), True


async def links(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal) -> list[FamilyLinkRead]:
    """The caller's links: the members they manage and the residents who manage them."""
    resident_id = _resident_caller(principal).resident_id
    assert resident_id is not None  # noqa: S101 - _resident_caller checked it
    found = await family_repository.links_of(session, resident_id)
    now = clock.now()
    views = [await _view(session, cipher, link, "manager" if link.manager_resident_id == resident_id else "member",
                         now) for link in found]
    people = {resident_id} | {r for link in found for r in (link.manager_resident_id, link.member_resident_id)}
    record(session, clock, principal, Action.LIST, LINK, resident_ids=sorted(people))
    return views


async def _side_of(session: AsyncSession, principal: Principal, link_id: int) -> tuple[FamilyLink, str]:
    """The link locked, and the caller's side of it; a link of others looks like 404."""
    resident_id = _resident_caller(principal).resident_id
    link = await family_repository.link(session, link_id, lock=True)
    if link is None or resident_id not in (link.manager_resident_id, link.member_resident_id):
        raise _not_found(link_id)
    return link, "manager" if link.manager_resident_id == resident_id else "member"


def _give_consent(link: FamilyLink, basis: str, by: str, now: datetime, note: str | None = None) -> None:
    if link.status == "revoked":
        raise Conflict("this link was revoked; the manager links the member again", code="family_link_revoked",
                       field="link_id", value=link.id, rule="booking.family.revoked")
    link.status, link.consent_basis, link.consented_by = "active", basis, by
    link.consented_at = link.updated_at = now
    link.consent_note = note


async def confirm(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                  link_id: int) -> FamilyLinkRead:
    """The adult member consents through their own account (confirming again returns the live link)."""
    link, side = await _side_of(session, principal, link_id)
    if side != "member":
        raise Forbidden("only the member consents to being booked for", code="member_consents",
                        field="link_id", value=link_id, rule="booking.family.adult_consent")
    if link.status != "active" or link.consent_basis == "guardian_declaration":  # a minor's link, now their own
        _give_consent(link, "member_confirmation", principal.subject, clock.now())
        await session.flush()
        _audit(session, clock, principal, Action.UPDATE, link, "consent: member confirmation")
    return await _view(session, cipher, link, side, clock.now())


async def record_consent(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                         link_id: int, data: ConsentRecord) -> FamilyLinkRead:
    """Staff record the consent the member gave them in person or on the phone, with a note of how."""
    link = await family_repository.link(session, link_id, lock=True)
    if link is None:
        raise _not_found(link_id)
    now = clock.now()
    member = (await family_repository.residents(session, (link.member_resident_id,)))[link.member_resident_id]
    if _status(link.status, link.consent_basis, member.birth_date, now) != "active":  # pending, needs consent
        _give_consent(link, "recorded_consent", principal.subject, now, data.note)
        await session.flush()
        _audit(session, clock, principal, Action.UPDATE, link, "consent: recorded by staff")
    else:
        _audit(session, clock, principal, Action.READ, link, "consent already live")
    return await _view(session, cipher, link, "member", now)


async def revoke(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                 link_id: int) -> FamilyLinkRead:
    """Either side ends the link; bookings already made stay the member's. Revoking again changes nothing."""
    link, side = await _side_of(session, principal, link_id)
    if link.status != "revoked":
        now = clock.now()
        link.status, link.revoked_by, link.revoked_at, link.updated_at = "revoked", principal.subject, now, now
        await session.flush()
        _audit(session, clock, principal, Action.UPDATE, link, f"revoked by the {side}")
    return await _view(session, cipher, link, side, clock.now())


def _come_of_age(basis: str | None, birth_date: date, now: datetime) -> bool:
    """A guardian's declaration lapses when the member turns 18: from then on only their own consent counts."""
    return basis == "guardian_declaration" and _age(birth_date, business_date(now)) >= ADULT_AGE


async def member_caller(connection: AsyncConnection | AsyncSession, clock: Clock, principal: Principal,
                        link_id: int) -> Caller:
    """The caller acting for the link's member: the manager's channel and app, the member as the resident.

    A link of others looks like 404; the manager's own link without a live consent is 403.
    """
    now = clock.now()
    caller = _resident_caller(principal)
    row = await family_repository.link_row(connection, link_id)
    if row is None or row["manager_resident_id"] != caller.resident_id:
        raise _not_found(link_id)
    status = _status(row["status"], row["consent_basis"], row["member_birth_date"], now)
    if status != "active":
        raise Forbidden(f"family link {link_id} has no live consent ({status})", code="consent_not_live",
                        field="link_id", value=link_id, rule="booking.family.consent")
    return Caller(principal, caller.channel, caller.app_id, row["member_resident_id"], None)


async def member_bookings(session: AsyncSession, clock: Clock, principal: Principal,
                          link_id: int) -> list[BookingRead]:
    """The member's bookings (the latest 200), as the member sees them."""
    caller = await member_caller(session, clock, principal, link_id)
    assert caller.resident_id is not None  # noqa: S101 - member_caller sets it
    views = [booking_read(row) for row in await repository.resident_bookings(session, caller.resident_id)]
    record(session, clock, principal, Action.LIST, RESOURCE, resident_ids=[caller.resident_id],
           detail=f"family link {link_id}")
    return views


async def join_waitlist_for_member(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal,
                                   link_id: int, data: WaitlistCreate) -> WaitlistRead:
    """Put the member on a full session's waitlist, as the member joining it themselves (their caps, bans)."""
    caller = await member_caller(session, clock, principal, link_id)
    return await waitlist.join(session, clock, cipher, principal, data, caller=caller)


async def member_waitlist(session: AsyncSession, clock: Clock, principal: Principal,
                          link_id: int) -> list[WaitlistRead]:
    """The member's waitlist entries (the latest 200), as the member sees them."""
    caller = await member_caller(session, clock, principal, link_id)
    return await waitlist.own_entries(session, clock, principal, resident_id=caller.resident_id,
                                      detail=f"family link {link_id}")


async def leave_waitlist_for_member(session: AsyncSession, clock: Clock, principal: Principal, link_id: int,
                                    entry_id: int) -> WaitlistRead:
    """Take the member off a waitlist (another's entry is 404, as for the member)."""
    caller = await member_caller(session, clock, principal, link_id)
    return await waitlist.leave(session, clock, principal, entry_id, resident_id=caller.resident_id)
