"""Case-discussion meetings and video lectures of the pathology network. Each is scheduled by an active member
(the organizer) once per request key, then held or cancelled once: scheduled → held | cancelled.

Object rules: a meeting is seen by its organizer's organization and its participants' organizations (its
reads audited with the residents of the cases it discusses); a lecture, teaching for the whole network, by
every active member. Only the organizer holds or cancels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import cases
from cityhealth.telemed import pathology_repository as repository
from cityhealth.telemed.fingerprint import fingerprint
from cityhealth.telemed.models import Member
from cityhealth.telemed.pathology import is_active
from cityhealth.telemed.pathology_models import PathologyLecture, PathologyMeeting, PathologyPerson
from cityhealth.telemed.pathology_repository import E
from cityhealth.telemed.pathology_schemas import (
    EventCancel,
    LectureHold,
    LectureIn,
    LectureRead,
    MeetingHold,
    MeetingIn,
    MeetingRead,
    ParticipantRead,
)

MEETING = "telemed_pathology_meeting"
LECTURE = "telemed_pathology_lecture"
OUTCOME = {"hold": "held", "cancel": "cancelled"}


async def _organizer(session: AsyncSession, principal: Principal, now: datetime) -> Member:
    organization = principal.organization_id
    found = None
    if organization is not None:
        found = await repository.active_membership(session, organization, business_date(now))
    if found is None:
        raise Forbidden(
            f"organization {organization} is not a member of the pathology network today",
            code="not_a_member",
            field="network_code",
            value="pathology",
            rule="telemed.pathology.organizer_member",
        )
    return found


def _check_times(starts_at: datetime, ends_at: datetime, what: str) -> None:
    if ends_at <= starts_at:
        raise ValidationFailed(
            f"ends_at: a {what} ends after it starts ({starts_at.isoformat()})",
            field="ends_at",
            value=ends_at.isoformat(),
            rule=f"telemed.pathology.{what}.times",
        )


async def _members_now(session: AsyncSession, people: list[PathologyPerson], now: datetime) -> dict[int, Member]:
    return await repository.active_memberships(session, {p.organization_id for p in people}, business_date(now))


def _event_values(data: Any, organizer: Member, principal: Principal, now: datetime) -> dict[str, Any]:
    return {
        "organizer_member_id": organizer.id,
        "organizer_organization_id": organizer.organization_id,
        "city_code": organizer.city_code,
        "request_key": data.request_key,
        "fingerprint": fingerprint(data),
        "title": data.title,
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "status": "scheduled",
        "step_key": None,
        "held_at": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "created_at": now,
        "created_by": principal.subject,
    }


def _same_request(held: PathologyMeeting | PathologyLecture, data: Any, what: str) -> None:
    if held.fingerprint != fingerprint(data):
        raise Conflict(
            f"this request key scheduled another {what}",
            field="request_key",
            value=data.request_key,
            rule=f"telemed.pathology.{what}.same_request",
        )


def _concurrent(request_key: str, what: str) -> Conflict:
    return Conflict(
        f"the same {what} is being scheduled concurrently; retry",
        field="request_key",
        value=request_key,
        rule=f"telemed.pathology.{what}.same_request",
    )


# --- meetings -----------------------------------------------------------------------------------------------


async def _meeting_read(session: AsyncSession, meeting: PathologyMeeting) -> MeetingRead:
    people = await repository.meeting_participants(session, meeting.id)
    return MeetingRead(
        id=meeting.id,
        organizer_member_id=meeting.organizer_member_id,
        organizer_organization_id=meeting.organizer_organization_id,
        title=meeting.title,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        status=meeting.status,
        participants=[
            ParticipantRead(person_id=p.id, kind=p.kind, name=p.name, organization_id=p.organization_id)
            for p in people
        ],
        case_ids=[c.id for c in await repository.meeting_cases(session, meeting.id)],
        minutes=meeting.minutes,
        held_at=meeting.held_at,
        cancelled_at=meeting.cancelled_at,
        cancel_reason=meeting.cancel_reason,
    )


async def _meeting_residents(session: AsyncSession, meeting_id: int) -> list[int | None]:
    return [c.resident_id for c in await repository.meeting_cases(session, meeting_id) if c.resident_id is not None]


async def _repeated_meeting(
    session: AsyncSession, clock: Clock, principal: Principal, held: PathologyMeeting, data: MeetingIn
) -> MeetingRead:
    """The meeting this request key scheduled already (409 when the request differs), audited as repeated."""
    _same_request(held, data, "meeting")
    record(session, clock, principal, Action.CREATE, MEETING, resource_id=held.id,
           resident_ids=await _meeting_residents(session, held.id), detail="repeated")
    return await _meeting_read(session, held)


async def schedule_meeting(session: AsyncSession, clock: Clock, principal: Principal, data: MeetingIn) -> MeetingRead:
    """Schedule a case-discussion meeting; the same request key again is the same meeting, changed it is 409."""
    now = clock.now()
    organizer = await _organizer(session, principal, now)
    held = await repository.event_by_key(session, PathologyMeeting, organizer.organization_id, data.request_key)
    if held is not None:
        return await _repeated_meeting(session, clock, principal, held, data)
    _check_times(data.starts_at, data.ends_at, "meeting")
    for field, ids in (("participant_ids", data.participant_ids), ("case_ids", data.case_ids)):
        if len(set(ids)) != len(ids):
            raise ValidationFailed(
                f"{field}: an id is named twice", field=field, value=ids, rule="telemed.pathology.meeting.distinct"
            )
    people = await repository.people_by_id(session, data.participant_ids)
    members = await _members_now(session, list(people.values()), now)
    for person_id in data.participant_ids:
        person = people.get(person_id)
        if person is None or not is_active(person, now) or person.organization_id not in members:
            raise ValidationFailed(
                f"participant_ids: person {person_id} is not an active expert or doctor of the pathology network",
                field="participant_ids",
                value=person_id,
                rule="telemed.pathology.meeting.participant",
            )
    residents: list[int | None] = []
    for case_id in data.case_ids:
        try:
            case, _ = await cases.visible(session, principal, case_id)
        except NotFound:
            case = None
        if case is None or case.network_code != repository.NETWORK:
            raise ValidationFailed(
                f"case_ids: case {case_id} is not a pathology case the organizer may see",
                field="case_ids",
                value=case_id,
                rule="telemed.pathology.meeting.case",
            )
        residents.append(case.resident_id)
    meeting_id = await repository.insert_event(
        session, PathologyMeeting, _event_values(data, organizer, principal, now) | {"minutes": None}
    )
    if meeting_id is None:  # a concurrent retry of this request made it first: answer with its meeting
        held = await repository.event_by_key(session, PathologyMeeting, organizer.organization_id, data.request_key)
        if held is None:
            raise _concurrent(data.request_key, "meeting")
        return await _repeated_meeting(session, clock, principal, held, data)
    await repository.add_meeting_links(session, meeting_id, data.participant_ids, data.case_ids)
    record(session, clock, principal, Action.CREATE, MEETING, resource_id=meeting_id,
           resident_ids=[r for r in residents if r is not None])
    return await _meeting_read(session, await _meeting(session, meeting_id))


async def _meeting(session: AsyncSession, meeting_id: int, *, lock: bool = False) -> PathologyMeeting:
    found = await repository.event(session, PathologyMeeting, meeting_id, lock=lock)
    if found is None:
        raise NotFound(
            f"no meeting {meeting_id}", field="meeting_id", value=meeting_id, rule="telemed.pathology.meeting.visible"
        )
    return found


async def get_meeting(session: AsyncSession, clock: Clock, principal: Principal, meeting_id: int) -> MeetingRead:
    """A meeting, to its organizer's and its participants' organizations; audited with the cases' residents."""
    found = await _meeting(session, meeting_id)
    organization = principal.organization_id
    participants = await repository.meeting_participants(session, found.id)
    if organization is None or (
        found.organizer_organization_id != organization and all(p.organization_id != organization for p in participants)
    ):
        raise NotFound(
            f"no meeting {meeting_id}", field="meeting_id", value=meeting_id, rule="telemed.pathology.meeting.visible"
        )
    residents = await _meeting_residents(session, found.id)
    record(session, clock, principal, Action.READ, MEETING, resource_id=found.id, resident_ids=residents)
    return await _meeting_read(session, found)


async def my_meetings(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    *,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[MeetingRead]:
    """The meetings the caller's organization organizes or takes part in; audited with the cases' residents."""
    if principal.organization_id is None:
        return []
    found = await repository.meetings_of(session, principal.organization_id, status, before_id, limit)
    residents: set[int] = set()
    for meeting in found:
        residents |= {r for r in await _meeting_residents(session, meeting.id) if r is not None}
    record(session, clock, principal, Action.LIST, MEETING, resident_ids=sorted(residents),
           detail=f"{len(found)} meetings")
    return [await _meeting_read(session, meeting) for meeting in found]


async def _transition(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    model: type[E],
    event_id: int,
    step: str,
    request_key: str,
    changes: dict[str, Any],
) -> bool:
    """Take `step` of a meeting or lecture under its lock, once per request key; whether it was taken now."""
    what = "meeting" if model is PathologyMeeting else "lecture"
    found = await repository.event(session, model, event_id, lock=True)
    if found is None or found.organizer_organization_id != principal.organization_id:
        raise NotFound(
            f"no {what} {event_id}", field=f"{what}_id", value=event_id, rule=f"telemed.pathology.{what}.visible"
        )
    if found.step_key == request_key and found.status == OUTCOME[step]:
        return False
    if found.status != "scheduled":
        raise Conflict(
            f"{what} {event_id} is {found.status}: the step '{step}' is allowed only when it is scheduled",
            code="illegal_transition",
            field="status",
            value=found.status,
            rule=f"telemed.pathology.{what}.{step}",
        )
    now = clock.now()
    if step == "hold" and now < found.starts_at:
        raise Conflict(
            f"{what} {event_id} starts at {found.starts_at.isoformat()}: it is held only once it has started",
            code="not_started",
            field="starts_at",
            value=found.starts_at.isoformat(),
            rule=f"telemed.pathology.{what}.started",
        )
    moment = {"held_at": now} if step == "hold" else {"cancelled_at": now}
    await repository.set_event(
        session, model, event_id, {"status": OUTCOME[step], "step_key": request_key} | moment | changes
    )
    return True


async def _step(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    model: type[E],
    event_id: int,
    step: str,
    request_key: str,
    changes: dict[str, Any],
    *,
    with_residents: bool = False,
) -> None:
    """Take `step` of a meeting or lecture and audit it (a repeat of the same request as repeated); a meeting's
    hold is audited with the residents of the cases it discussed."""
    taken = await _transition(session, clock, principal, model, event_id, step, request_key, changes)
    residents = await _meeting_residents(session, event_id) if with_residents else ()
    target = MEETING if model is PathologyMeeting else LECTURE
    record(session, clock, principal, Action.UPDATE, target, resource_id=event_id, resident_ids=residents,
           detail=step if taken else f"{step}; repeated")


async def hold_meeting(
    session: AsyncSession, clock: Clock, principal: Principal, meeting_id: int, data: MeetingHold
) -> MeetingRead:
    """The organizer records the meeting held, with its minutes."""
    await _step(
        session, clock, principal, PathologyMeeting, meeting_id, "hold", data.request_key, {"minutes": data.minutes},
        with_residents=True,
    )
    return await _meeting_read(session, await _meeting(session, meeting_id))


async def cancel_meeting(
    session: AsyncSession, clock: Clock, principal: Principal, meeting_id: int, data: EventCancel
) -> MeetingRead:
    await _step(
        session, clock, principal, PathologyMeeting, meeting_id, "cancel", data.request_key,
        {"cancel_reason": data.reason},
    )
    return await _meeting_read(session, await _meeting(session, meeting_id))


# --- lectures -----------------------------------------------------------------------------------------------


async def _lecture_read(session: AsyncSession, lecture: PathologyLecture) -> LectureRead:
    speaker = await repository.person(session, lecture.speaker_id)
    return LectureRead(
        id=lecture.id,
        organizer_member_id=lecture.organizer_member_id,
        organizer_organization_id=lecture.organizer_organization_id,
        title=lecture.title,
        speaker_id=lecture.speaker_id,
        speaker_name=speaker.name if speaker is not None else "",
        starts_at=lecture.starts_at,
        ends_at=lecture.ends_at,
        status=lecture.status,
        attendance=lecture.attendance,
        held_at=lecture.held_at,
        cancelled_at=lecture.cancelled_at,
        cancel_reason=lecture.cancel_reason,
    )


async def _lecture(session: AsyncSession, lecture_id: int) -> PathologyLecture:
    found = await repository.event(session, PathologyLecture, lecture_id)
    if found is None:
        raise NotFound(
            f"no lecture {lecture_id}", field="lecture_id", value=lecture_id, rule="telemed.pathology.lecture.visible"
        )
    return found


async def _repeated_lecture(
    session: AsyncSession, clock: Clock, principal: Principal, held: PathologyLecture, data: LectureIn
) -> LectureRead:
    """The lecture this request key scheduled already (409 when the request differs), audited as repeated."""
    _same_request(held, data, "lecture")
    record(session, clock, principal, Action.CREATE, LECTURE, resource_id=held.id, detail="repeated")
    return await _lecture_read(session, held)


async def schedule_lecture(session: AsyncSession, clock: Clock, principal: Principal, data: LectureIn) -> LectureRead:
    """Schedule a video lecture by an expert; the same request key again is the same lecture."""
    now = clock.now()
    organizer = await _organizer(session, principal, now)
    held = await repository.event_by_key(session, PathologyLecture, organizer.organization_id, data.request_key)
    if held is not None:
        return await _repeated_lecture(session, clock, principal, held, data)
    _check_times(data.starts_at, data.ends_at, "lecture")
    speaker = await repository.person(session, data.speaker_id)
    if (
        speaker is None
        or speaker.kind != "expert"
        or not is_active(speaker, now)
        or speaker.organization_id not in await _members_now(session, [speaker], now)
    ):
        raise ValidationFailed(
            f"speaker_id: person {data.speaker_id} is not an active expert of the pathology network",
            field="speaker_id",
            value=data.speaker_id,
            rule="telemed.pathology.lecture.speaker",
        )
    lecture_id = await repository.insert_event(
        session,
        PathologyLecture,
        _event_values(data, organizer, principal, now) | {"speaker_id": data.speaker_id, "attendance": None},
    )
    if lecture_id is None:  # a concurrent retry of this request made it first: answer with its lecture
        held = await repository.event_by_key(session, PathologyLecture, organizer.organization_id, data.request_key)
        if held is None:
            raise _concurrent(data.request_key, "lecture")
        return await _repeated_lecture(session, clock, principal, held, data)
    record(session, clock, principal, Action.CREATE, LECTURE, resource_id=lecture_id)
    return await _lecture_read(session, await _lecture(session, lecture_id))


async def get_lecture(session: AsyncSession, clock: Clock, principal: Principal, lecture_id: int) -> LectureRead:
    """A lecture, to every active member of the network (and the networks' administrators)."""
    if not await _member_or_admin(session, clock, principal, refuse=False):
        raise NotFound(
            f"no lecture {lecture_id}", field="lecture_id", value=lecture_id, rule="telemed.pathology.lecture.visible"
        )
    return await _lecture_read(session, await _lecture(session, lecture_id))


async def _member_or_admin(session: AsyncSession, clock: Clock, principal: Principal, *, refuse: bool = True) -> bool:
    """Whether the caller administers the networks or its organization is a pathology member today (else 403
    when `refuse`)."""
    if principal.has(Scope.TELEMED_ADMIN):
        return True
    try:
        await _organizer(session, principal, clock.now())
    except Forbidden:
        if refuse:
            raise
        return False
    return True


async def list_lectures(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    *,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[LectureRead]:
    """The network's lectures, to its active members (and the administrators)."""
    await _member_or_admin(session, clock, principal)
    found = await repository.lectures(session, status, before_id, limit)
    return [await _lecture_read(session, lecture) for lecture in found]


async def hold_lecture(
    session: AsyncSession, clock: Clock, principal: Principal, lecture_id: int, data: LectureHold
) -> LectureRead:
    """The organizer records the lecture given, with how many attended."""
    await _step(
        session, clock, principal, PathologyLecture, lecture_id, "hold", data.request_key,
        {"attendance": data.attendance},
    )
    return await _lecture_read(session, await _lecture(session, lecture_id))


async def cancel_lecture(
    session: AsyncSession, clock: Clock, principal: Principal, lecture_id: int, data: EventCancel
) -> LectureRead:
    await _step(
        session, clock, principal, PathologyLecture, lecture_id, "cancel", data.request_key,
        {"cancel_reason": data.reason},
    )
    return await _lecture_read(session, await _lecture(session, lecture_id))
