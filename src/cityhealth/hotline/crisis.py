"""Crisis-intervention follow-ups: the crisis team's list, closing one, and the escalation of overdue ones."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound
from cityhealth.hotline import crisis_repository
from cityhealth.hotline.models import Call, CrisisFollowUp
from cityhealth.hotline.schemas import FollowUpClose, FollowUpRead
from cityhealth.hotline.service import masked_caller
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

logger = logging.getLogger(__name__)
ESCALATION_ACTOR = "task:hotline.escalate_crisis_follow_ups"
# How many overdue follow-ups one escalation round takes (the next round takes the rest).
ESCALATION_ROUND = 500


def _read(settings: Settings, clock: Clock, follow_up: CrisisFollowUp, call: Call) -> FollowUpRead:
    return FollowUpRead(
        id=follow_up.id, call_id=follow_up.call_id, status=follow_up.status, opened_at=follow_up.opened_at,
        due_at=follow_up.due_at, overdue=follow_up.status == "open" and follow_up.due_at < clock.now(),
        escalated_at=follow_up.escalated_at, closed_at=follow_up.closed_at, closed_by=follow_up.closed_by,
        note=follow_up.note, city_code=call.city_code, caller_number_masked=masked_caller(settings, call.caller_cipher))


async def list_follow_ups(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, *,
                          status: str, limit: int) -> list[FollowUpRead]:
    """The crisis team's follow-ups in one status, the earliest due first."""
    rows = await crisis_repository.follow_ups(session, [status], limit)
    record(session, clock, principal, Action.LIST, "hotline_crisis_follow_up", detail=f"{status}={len(rows)}")
    return [_read(settings, clock, follow_up, call) for follow_up, call in rows]


async def get_follow_up(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                        follow_up_id: int) -> FollowUpRead:
    found = await crisis_repository.follow_up(session, follow_up_id)
    if found is None:
        raise NotFound("no such follow-up", field="follow_up_id", value=follow_up_id,
                       rule="hotline.follow_up.exists")
    record(session, clock, principal, Action.READ, "hotline_crisis_follow_up", resource_id=follow_up_id)
    return _read(settings, clock, *found)


async def close_follow_up(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                          follow_up_id: int, data: FollowUpClose) -> FollowUpRead:
    """Mark a follow-up done; the same close again changes nothing, any other change of a closed one is refused."""
    found = await crisis_repository.follow_up(session, follow_up_id, lock=True)
    if found is None:
        raise NotFound("no such follow-up", field="follow_up_id", value=follow_up_id,
                       rule="hotline.follow_up.exists")
    follow_up, call = found
    if follow_up.status != "open":
        if not (follow_up.status == "done" and follow_up.note == data.note):
            raise Conflict(f"the follow-up is {follow_up.status}; only an open one can be closed", field="status",
                           value=follow_up.status, rule="hotline.follow_up.close_open")
    else:
        now = clock.now()
        follow_up.status, follow_up.closed_at, follow_up.closed_by = "done", now, principal.subject
        follow_up.note, follow_up.updated_at = data.note, now
        await session.flush()
    record(session, clock, principal, Action.UPDATE, "hotline_crisis_follow_up", resource_id=follow_up_id,
           detail="closed")
    return _read(settings, clock, follow_up, call)


async def escalate_overdue(session: AsyncSession, clock: Clock) -> list[int]:
    """Escalate the open follow-ups past their deadline (each once); their ids."""
    ids = await crisis_repository.escalate_overdue(session, clock.now(), ESCALATION_ROUND)
    for follow_up_id in ids:
        record(session, clock, None, Action.UPDATE, "hotline_crisis_follow_up", resource_id=follow_up_id,
               detail="escalated: past its deadline", actor=ESCALATION_ACTOR, actor_kind="task")
    if ids:
        # Ids only: a follow-up's call and caller stay out of the log.
        logger.warning("crisis follow-ups past their deadline escalated", extra={"follow_up_ids": ids})
    return ids
