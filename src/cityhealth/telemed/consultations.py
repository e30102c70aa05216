"""Consultations: a member schedules one with other members of a network (optionally about one of its
cases); a participating member gives the opinion, which completes it. Seen by the requester's and the
participants' organizations only; anyone else gets 404."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import repository, volumes
from cityhealth.telemed.cases import requester_member, visible
from cityhealth.telemed.fingerprint import fingerprint as request_fingerprint
from cityhealth.telemed.models import Consultation
from cityhealth.telemed.schemas import ConsultationIn, ConsultationRead, OpinionIn, ParticipantRead

RESOURCE = "telemed_consultation"


async def _read(session: AsyncSession, consultation: Consultation) -> ConsultationRead:
    people = await repository.participants(session, consultation.id)
    members = await repository.members_by_id(session, [p.member_id for p in people])
    return ConsultationRead(
        id=consultation.id,
        network_code=consultation.network_code,
        case_id=consultation.case_id,
        requester_member_id=consultation.requester_member_id,
        starts_at=consultation.starts_at,
        ends_at=consultation.ends_at,
        status=consultation.status,
        participants=[
            ParticipantRead(
                member_id=p.member_id, organization_id=members[p.member_id].organization_id, doctor_name=p.doctor_name
            )
            for p in people
        ],
        opinion=consultation.opinion,
        opinion_by=consultation.opinion_by,
        opinion_at=consultation.opinion_at,
    )


async def _visible(
    session: AsyncSession,
    principal: Principal,
    consultation_id: int,
    *,
    as_participant: bool = False,
    lock: bool = False,
) -> Consultation:
    found = await repository.consultation(session, consultation_id, lock=lock)
    organization = principal.organization_id
    seen = False
    if found is not None and organization is not None:
        people = await repository.participants(session, found.id)
        members = await repository.members_by_id(session, [p.member_id for p in people])
        participant = any(m.organization_id == organization for m in members.values())
        requester = found.requester_organization_id == organization and principal.has(Scope.TELEMED_REQUEST)
        seen = participant if as_participant else (participant or requester)
    if found is None or not seen:
        raise NotFound(
            f"no consultation {consultation_id}",
            field="consultation_id",
            value=consultation_id,
            rule="telemed.consultation.visible",
        )
    return found


async def _fetch(session: AsyncSession, consultation_id: int) -> Consultation:
    """A consultation this request has just written (re-read: the update went past the ORM)."""
    found = await repository.consultation(session, consultation_id)
    if found is None:
        raise NotFound(f"no consultation {consultation_id}", field="consultation_id", value=consultation_id)
    return found


async def schedule(session: AsyncSession, clock: Clock, principal: Principal, data: ConsultationIn) -> ConsultationRead:
    """Schedule a consultation; the same request key again is the same consultation, changed it is 409."""
    now = clock.now()
    requester = await requester_member(session, principal, data.network_code, now)
    fingerprint = request_fingerprint(data)
    held = await repository.consultation_by_key(session, requester.organization_id, data.request_key)
    if held is not None:
        if held.fingerprint != fingerprint:
            raise Conflict(
                "this request key scheduled another consultation",
                field="request_key",
                value=data.request_key,
                rule="telemed.consultation.same_request",
            )
        record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=held.id, detail="repeated")
        return await _read(session, held)
    if data.ends_at <= data.starts_at:
        raise ValidationFailed(
            "ends_at: a consultation ends after it starts",
            field="ends_at",
            value=data.ends_at.isoformat(),
            rule="telemed.consultation.times",
        )
    resident_ids: list[int | None] = []
    if data.case_id is not None:
        case, _ = await visible(session, principal, data.case_id, as_="requester")
        if case.network_code != data.network_code:
            raise ValidationFailed(
                f"case_id: case {data.case_id} belongs to the {case.network_code} network",
                field="case_id",
                value=data.case_id,
                rule="telemed.consultation.case_network",
            )
        resident_ids = [case.resident_id]
    ids = [p.member_id for p in data.participants]
    if len(set(ids)) != len(ids):
        raise ValidationFailed(
            "participants: a member is named twice",
            field="participants",
            value=ids,
            rule="telemed.consultation.distinct",
        )
    members = await repository.members_by_id(session, ids)
    today = business_date(now)
    for member_id in ids:
        m = members.get(member_id)
        if (
            m is None
            or m.network_code != data.network_code
            or m.joined_on > today
            or (m.left_on is not None and m.left_on <= today)
            or m.id == requester.id
        ):
            raise ValidationFailed(
                f"participants: member {member_id} is not another active member of {data.network_code}",
                field="participants",
                value=member_id,
                rule="telemed.consultation.participant",
            )
    consultation_id = await repository.insert_consultation(
        session,
        {
            "network_code": data.network_code,
            "case_id": data.case_id,
            "requester_member_id": requester.id,
            "requester_organization_id": requester.organization_id,
            "request_key": data.request_key,
            "fingerprint": fingerprint,
            "starts_at": data.starts_at,
            "ends_at": data.ends_at,
            "status": "scheduled",
            "opinion": None,
            "opinion_by": None,
            "opinion_at": None,
            "created_at": now,
            "created_by": principal.subject,
        },
    )
    if consultation_id is None:
        raise Conflict(
            "the same consultation is being scheduled concurrently; retry",
            field="request_key",
            value=data.request_key,
            rule="telemed.consultation.same_request",
        )
    await repository.add_participants(
        session, consultation_id, [(p.member_id, p.doctor_name) for p in data.participants]
    )
    await repository.add_volume(
        session, data.network_code, volumes.month_of(now), requester.organization_id, consultations=1
    )
    record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=consultation_id, resident_ids=resident_ids)
    return await _read(session, await _fetch(session, consultation_id))


async def get_consultation(
    session: AsyncSession, clock: Clock, principal: Principal, consultation_id: int
) -> ConsultationRead:
    found = await _visible(session, principal, consultation_id)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=found.id)
    return await _read(session, found)


async def give_opinion(
    session: AsyncSession, clock: Clock, principal: Principal, consultation_id: int, data: OpinionIn
) -> ConsultationRead:
    """A participant's opinion completes the consultation; the same opinion again changes nothing."""
    found = await _visible(session, principal, consultation_id, as_participant=True, lock=True)
    if found.status == "completed" and found.opinion == data.opinion:
        record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=found.id, detail="opinion; repeated")
        return await _read(session, found)
    if found.status != "scheduled":
        raise Conflict(
            f"consultation {found.id} is {found.status}: an opinion is given only while it is scheduled",
            code="illegal_transition",
            field="status",
            value=found.status,
            rule="telemed.consultation.opinion",
        )
    now = clock.now()
    await repository.set_consultation(
        session,
        found.id,
        {"status": "completed", "opinion": data.opinion, "opinion_by": principal.subject, "opinion_at": now},
    )
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=found.id, detail="opinion")
    return await _read(session, await _fetch(session, found.id))
