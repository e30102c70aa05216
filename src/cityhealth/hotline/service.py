"""The hotline's call use cases: city lines, reading calls (an agent their own, a supervisor all), agents'
annotations and reclassifications. Event reports are in reporting.py, crisis follow-ups in crisis.py."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.hotline import crisis_repository, repository
from cityhealth.hotline.call_tallies import Moves, tally_key
from cityhealth.hotline.models import CRISIS, Call, CallChange, CityLine
from cityhealth.hotline.reporting import CALLER_PURPOSE, follow_up_due
from cityhealth.hotline.schemas import (
    AnnotationIn,
    CallChangeRead,
    CallDetail,
    CallEventRead,
    CallRead,
    CallSearch,
    CityLineIn,
    CityLineRead,
    ReclassificationIn,
)
from cityhealth.registry.service import IdentifierError, mask_phone, validate_phone
from cityhealth.security.audit import Action, record
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, Scope


def masked_caller(settings: Settings, cipher_text: str | None) -> str | None:
    """The caller's number masked (`138****5678`); the whole number never leaves the service."""
    return None if cipher_text is None else mask_phone(field_cipher(settings).decrypt(CALLER_PURPOSE, cipher_text))


def call_read(settings: Settings, call: Call) -> CallRead:
    return CallRead(
        id=call.id, telephony_call_id=call.telephony_call_id, state=call.state, city_code=call.city_code,
        started_at=call.started_at, business_date=call.business_date, ivr_path=call.ivr_path, queue=call.queue,
        queued_at=call.queued_at, answered_at=call.answered_at, agent=call.agent, ended_at=call.ended_at,
        caller_number_masked=masked_caller(settings, call.caller_cipher), reported_category=call.reported_category,
        category=call.category, classified_by=call.classified_by, outcome=call.outcome, note=call.note)


async def put_city_line(session: AsyncSession, clock: Clock, principal: Principal | None, line: str,
                        data: CityLineIn, *, operator: str | None = None) -> CityLineRead:
    """Register a city line, or change it (the same body again changes nothing); by a client or an operator."""
    if not line.strip() or len(line) > 32:
        raise ValidationFailed("a city line's name has 1 to 32 characters", field="line", value=line,
                               rule="hotline.city_line.length")
    now = clock.now()
    row = await repository.city_line(session, line)
    if row is None:
        row = CityLine(line=line, city_code=data.city_code, city_name=data.city_name, active=data.active,
                       created_at=now, updated_at=now)
        session.add(row)
    elif (row.city_code, row.city_name, row.active) != (data.city_code, data.city_name, data.active):
        row.city_code, row.city_name, row.active, row.updated_at = data.city_code, data.city_name, data.active, now
    await session.flush()
    record(session, clock, principal, Action.UPDATE, "hotline_city_line", resource_id=row.id,
           actor=operator, actor_kind="operator" if operator else None)
    return CityLineRead.model_validate(row)


async def list_city_lines(session: AsyncSession) -> list[CityLineRead]:
    return [CityLineRead.model_validate(row) for row in await repository.city_lines(session)]


def _may_see(principal: Principal, call: Call) -> bool:
    """A supervisor sees every call; an agent the calls they answered."""
    return principal.has(Scope.HOTLINE_SUPERVISE) or (call.agent is not None and call.agent == principal.subject)


async def _visible_call(session: AsyncSession, principal: Principal, call_id: int, *, lock: bool = False) -> Call:
    call = await (repository.call_for_update(session, call_id) if lock else repository.call(session, call_id))
    if call is None or not _may_see(principal, call):
        raise NotFound("no such call", field="call_id", value=call_id, rule="hotline.call.visible")
    return call


async def _detail(session: AsyncSession, settings: Settings, call: Call) -> CallDetail:
    events = [CallEventRead(event_id=e.event_id, kind=e.kind, at=e.at, value=e.value, category=e.category)
              for e in await repository.call_events(session, call.id)]
    changes = [CallChangeRead(kind=c.kind, note=c.note, category_from=c.category_from, category_to=c.category_to,
                              actor=c.actor, at=c.at) for c in await repository.call_changes(session, call.id)]
    return CallDetail(**call_read(settings, call).model_dump(), events=events, changes=changes)


async def get_call(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                   call_id: int) -> CallDetail:
    call = await _visible_call(session, principal, call_id)
    record(session, clock, principal, Action.READ, "hotline_call", resource_id=call.id)
    return await _detail(session, settings, call)


async def list_calls(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, *,
                     before_id: int | None, limit: int) -> list[CallRead]:
    """Newest first: every call for a supervisor, an agent's own otherwise."""
    agent = None if principal.has(Scope.HOTLINE_SUPERVISE) else principal.subject
    calls = await repository.calls_page(session, agent=agent, before_id=before_id, limit=limit)
    record(session, clock, principal, Action.LIST, "hotline_call", detail=f"calls={len(calls)}")
    return [call_read(settings, call) for call in calls]


async def search_by_caller(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                           search: CallSearch) -> list[CallRead]:
    """A caller's calls, found by the number's keyed hash (the number itself is stored only encrypted)."""
    try:
        number = validate_phone(search.caller_number)
    except IdentifierError as error:
        raise ValidationFailed(str(error), field="caller_number", value=mask_phone(search.caller_number),
                               rule="hotline.caller_number.format") from error
    calls = await repository.calls_from(session, field_cipher(settings).lookup_hash(CALLER_PURPOSE, number),
                                        search.limit)
    record(session, clock, principal, Action.SEARCH, "hotline_call", detail=f"by caller; calls={len(calls)}")
    return [call_read(settings, call) for call in calls]


async def _replayed(session: AsyncSession, call: Call, key: str, kind: str, *, note: str,
                    category: str | None) -> bool:
    """True when this key's change is already held as the same change; refused when it is another."""
    held = await repository.change_by_key(session, call.id, key)
    if held is None:
        return False
    if held.kind != kind or held.note != note or (category is not None and held.category_to != category):
        raise Conflict("this request key was used for another change of the call", field="request_key",
                       value=key, rule="hotline.change.key_once")
    return True


async def annotate(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, call_id: int,
                   data: AnnotationIn) -> CallDetail:
    """An agent's note on a call; every note is kept, the latest is the call's."""
    call = await _visible_call(session, principal, call_id, lock=True)
    if not await _replayed(session, call, data.request_key, "annotation", note=data.note, category=None):
        now = clock.now()
        session.add(CallChange(call_id=call.id, request_key=data.request_key, kind="annotation", note=data.note,
                               actor=principal.subject, at=now))
        call.note, call.updated_at = data.note, now
        await session.flush()
    record(session, clock, principal, Action.UPDATE, "hotline_call", resource_id=call.id, detail="annotation")
    return await _detail(session, settings, call)


async def reclassify(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, call_id: int,
                     data: ReclassificationIn) -> CallDetail:
    """An agent's category for a call, which later telephony reports do not override; a move into crisis
    intervention opens its follow-up, a move out cancels an open one."""
    call = await _visible_call(session, principal, call_id, lock=True)
    if not await _replayed(session, call, data.request_key, "reclassification", note=data.reason,
                           category=data.category):
        if call.category == data.category:
            raise ValidationFailed(f"the call is already in category {data.category}", field="category",
                                   value=data.category, rule="hotline.reclassify.changes_category")
        now = clock.now()
        session.add(CallChange(call_id=call.id, request_key=data.request_key, kind="reclassification",
                               note=data.reason, category_from=call.category, category_to=data.category,
                               actor=principal.subject, at=now))
        before = call.category
        call.category, call.classified_by, call.updated_at = data.category, principal.subject, now
        moves = Moves()
        moves.move(tally_key(call.business_date, call.start_hour, call.city_code, before, call.outcome),
                   tally_key(call.business_date, call.start_hour, call.city_code, call.category, call.outcome))
        await repository.add_tallies(session, moves.rows())
        follow_up = await crisis_repository.follow_up_of_call(session, call.id)
        if data.category == CRISIS:
            due = follow_up_due(call.ended_at, call.started_at, now)
            if follow_up is None:
                await crisis_repository.open_follow_ups(session, [
                    {"call_id": call.id, "status": "open", "opened_at": now, "due_at": due, "updated_at": now}])
            elif follow_up.status == "cancelled":
                follow_up.status, follow_up.opened_at, follow_up.due_at = "open", now, due
                follow_up.escalated_at = follow_up.closed_at = follow_up.closed_by = None
                follow_up.updated_at = now
        elif before == CRISIS and follow_up is not None and follow_up.status == "open":
            follow_up.status, follow_up.closed_at, follow_up.closed_by = "cancelled", now, principal.subject
            follow_up.note, follow_up.updated_at = "reclassified out of crisis intervention", now
        await session.flush()
    record(session, clock, principal, Action.UPDATE, "hotline_call", resource_id=call.id,
           detail="reclassification")
    return await _detail(session, settings, call)
