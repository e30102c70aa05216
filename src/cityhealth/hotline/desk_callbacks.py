"""The call-back list of suspended clinics (停诊): residents whose bookings a session suspension cancelled
and who still need a call. The booking room keeps the list (booking/suspension.py); the desk shows it with
names and numbers masked, reveals the number only in the call-back action itself (audited as revealed), and
records each attempt (reached or not, with a note). A resident reached closes the call-back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking
from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound
from cityhealth.hotline import desk_repository
from cityhealth.hotline.desk_schemas import CallbackDial, CallbackItem, CallbackResult, CallbackResultIn
from cityhealth.hotline.models import CallbackAttempt
from cityhealth.registry import service as registry
from cityhealth.security.audit import REVEALED, Action, record
from cityhealth.security.principals import Principal

RESOURCE = "booking_callback"
_LIST_LIMIT = 200


def mask_name(name: str) -> str:
    """The family name kept, the rest starred (张**)."""
    return name[:1] + "*" * max(len(name) - 1, 1)


async def _due(session: AsyncSession, callback_id: int) -> tuple[booking.CallbackRead, int]:
    found = await booking.due_callback(session, callback_id)
    if found is not None:
        return found
    raise NotFound(f"no open call-back {callback_id}", code="callback_not_found", field="callback_id",
                   value=callback_id, rule="hotline.callback.open")


async def callback_list(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, *,
                        limit: int = 100) -> list[CallbackItem]:
    """The open call-backs, oldest first, masked; audited once per resident shown."""
    cipher = registry.cipher_for(settings)
    due = await booking.due_callbacks(session, min(limit, _LIST_LIMIT))
    attempts = await desk_repository.attempts_of(session, [item.id for item, _ in due])
    found: list[CallbackItem] = []
    for item, resident_id in due:
        view = await registry.resident_view(session, cipher, resident_id)
        tried = attempts[item.id]
        found.append(CallbackItem(
            id=item.id, booking_id=item.booking_id, session_id=item.session_id, reason=item.reason,
            created_at=item.created_at, name_masked=mask_name(view.name), phone_masked=view.phone_masked,
            attempts=len(tried), last_outcome=tried[-1].outcome if tried else None))
    record(session, clock, principal, Action.LIST, RESOURCE, resident_ids=[rid for _, rid in due],
           detail=f"desk call-back list={len(due)}")
    return found


async def dial(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
               callback_id: int) -> CallbackDial:
    """The call-back action: the resident's whole number and name, to dial now (audited as revealed)."""
    item, resident_id = await _due(session, callback_id)
    cipher = registry.cipher_for(settings)
    phone = await registry.resident_phone(session, cipher, resident_id)
    view = await registry.resident_view(session, cipher, resident_id)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=item.id, resident_ids=[resident_id],
           detail=REVEALED)
    return CallbackDial(id=item.id, phone=phone, name=view.name)


async def report(session: AsyncSession, clock: Clock, principal: Principal, callback_id: int,
                 data: CallbackResultIn) -> CallbackResult:
    """Record a call-back attempt (idempotent on its request key); reached closes the call-back."""
    held = await desk_repository.attempt_by_key(session, callback_id, data.request_key)
    if held is not None:
        if (held.outcome, held.note) != (data.outcome, data.note):
            raise Conflict("this request key was used for another call-back result", field="request_key",
                           value=data.request_key, rule="hotline.callback.key_once")
        tried = (await desk_repository.attempts_of(session, [callback_id]))[callback_id]
        done = any(attempt.outcome == "reached" for attempt in tried)
        return CallbackResult(id=callback_id, outcome=held.outcome, status="done" if done else "open",
                              attempts=len(tried))
    item, resident_id = await _due(session, callback_id)
    session.add(CallbackAttempt(callback_id=item.id, request_key=data.request_key, outcome=data.outcome,
                                note=data.note, agent=principal.subject, at=clock.now()))
    await session.flush()
    status = "open"
    if data.outcome == "reached":
        status = (await booking.close_callback(session, clock, principal, item.id, data.note)).status
    tried = (await desk_repository.attempts_of(session, [item.id]))[item.id]
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=item.id, resident_ids=[resident_id],
           detail=f"call-back {data.outcome}")
    return CallbackResult(id=item.id, outcome=data.outcome, status=status, attempts=len(tried))
