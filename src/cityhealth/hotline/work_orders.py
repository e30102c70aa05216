"""The work orders' use cases after intake: reading them (the hotline all, an organization its own), and each
step of their life, each an event appended under the order's row lock. Intake is in work_order_intake.py, the
result sent back to 12345 in work_order_outbox.py, the state and SLA rules in work_order_events.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound
from cityhealth.hotline import holidays, work_order_outbox
from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.work_order_events import Projection, project, refusal
from cityhealth.hotline.work_order_models import WorkOrder
from cityhealth.hotline.work_order_schemas import (
    CallbackIn,
    ExtensionRequestIn,
    ReplyIn,
    StepIn,
    WorkOrderDetail,
    WorkOrderEventRead,
    WorkOrderRead,
)
from cityhealth.hotline.work_order_statistics import append_step
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope

logger = logging.getLogger(__name__)
REMINDER_ACTOR = "task:hotline.remind_work_orders"
REMINDER_ROUND = 500  # orders looked at per reminder round; the next round takes the rest
# The kinds a step appends first: a retried request key is the same step when its first event is of this kind.
_KIND_OF_STEP = {"dispatch": "dispatched", "request_extension": "extension_requested",
                 "approve_extension": "extension_approved", "refuse_extension": "extension_refused",
                 "reply": "replied", "close": "closed", "callback": "callback"}


def sees_all(principal: Principal) -> bool:
    """Hotline agents and supervisors see every order; an organization's staff only their organization's."""
    return principal.has(Scope.HOTLINE_WORK_ORDERS)


async def _visible(session: AsyncSession, principal: Principal, order_id: int, *, lock: bool = False) -> WorkOrder:
    order = await repository.order(session, order_id, lock=lock)
    if order is None or not (sees_all(principal) or (principal.organization_id is not None
                                                      and principal.organization_id == order.organization_id)):
        raise NotFound("no such work order", field="work_order_id", value=order_id,
                       rule="hotline.work_order.visible")
    return order


def _read(order: WorkOrder, seen: Projection, organization_name: str, now: datetime) -> WorkOrderRead:
    return WorkOrderRead(
        id=order.id, source=order.source, source_order_id=order.source_order_id,
        category=order.category, title=order.title, content=order.content,
        organization_id=order.organization_id, organization_name=organization_name, call_id=order.call_id,
        received_at=order.received_at, state=seen.state, sla=seen.sla(now),
        due_at=seen.due_at, pending_extension_days=seen.pending_extension_days,
        callback=seen.callback)


async def _detail(session: AsyncSession, clock: Clock, order: WorkOrder) -> WorkOrderDetail:
    events = await repository.events(session, order.id)
    seen = project((await repository.steps_of(session, [order.id]))[order.id])
    names = await registry.organization_names(session, [order.organization_id])
    return WorkOrderDetail(
        **_read(order, seen, names.get(order.organization_id, ""), clock.now()).model_dump(),
        events=[WorkOrderEventRead(seq=e.seq, kind=e.kind, at=e.at, actor=e.actor, note=e.note, data=dict(e.data))
                for e in events])


async def get_order(session: AsyncSession, clock: Clock, principal: Principal, order_id: int) -> WorkOrderDetail:
    order = await _visible(session, principal, order_id)
    record(session, clock, principal, Action.READ, "hotline_work_order", resource_id=order.id)
    return await _detail(session, clock, order)


async def list_orders(session: AsyncSession, clock: Clock, principal: Principal, *, source: str | None = None,
                      category: str | None = None, state: str | None = None, text: str | None = None,
                      organization_id: int | None = None, received_from: datetime | None = None,
                      received_to: datetime | None = None, before_id: int | None = None,
                      limit: int = 50) -> list[WorkOrderRead]:
    """Newest first, filtered; an organization's staff see their organization's only, whatever they ask."""
    if not sees_all(principal):
        if principal.organization_id is None or organization_id not in (None, principal.organization_id):
            record(session, clock, principal, Action.LIST, "hotline_work_order", detail="work_orders=0")
            return []
        organization_id = principal.organization_id
    orders = await repository.orders_page(
        session, organization_id=organization_id, source=source, category=category, state=state, text=text,
        received_from=received_from, received_to=received_to, before_id=before_id, limit=limit)
    steps = await repository.steps_of(session, [order.id for order in orders])
    names = await registry.organization_names(session, {order.organization_id for order in orders})
    now = clock.now()
    record(session, clock, principal, Action.LIST, "hotline_work_order", detail=f"work_orders={len(orders)}")
    return [_read(order, project(steps[order.id]), names.get(order.organization_id, ""), now) for order in orders]


Effect = Callable[[WorkOrder, Projection, datetime], Awaitable[list[dict[str, Any]]]]


async def _step(session: AsyncSession, clock: Clock, principal: Principal, order_id: int, step: str,
                request_key: str, effect: Effect) -> WorkOrderDetail:
    """Take `step` once per request key: checked against the state the events give, its events appended."""
    order = await _visible(session, principal, order_id, lock=True)
    held = await repository.event_by_key(session, order.id, request_key)
    if held is not None:
        if held.kind != _KIND_OF_STEP[step]:
            raise Conflict(f"this request key was used for another step of the work order ({held.kind})",
                           field="request_key", value=request_key, rule="hotline.work_order.key_once")
        record(session, clock, principal, Action.UPDATE, "hotline_work_order", resource_id=order.id,
               detail=f"{step}; repeated")
        return await _detail(session, clock, order)
    steps = (await repository.steps_of(session, [order.id]))[order.id]
    seen = project(steps)
    now = clock.now()
    refused = refusal(seen, step, now)
    if refused is not None:
        rule, message = refused
        code = "illegal_transition" if rule == "hotline.work_order.transition" else "work_order_step_refused"
        raise Conflict(f"{step} refused: {message}", code=code, field="state", value=seen.state, rule=rule)
    seq = max(s.seq for s in steps)
    for n, values in enumerate(await effect(order, seen, now), start=1):
        steps.append(await append_step(session, order.source, steps, {
            "work_order_id": order.id, "seq": seq + n, "at": now, "actor": principal.subject,
            "request_key": request_key if n == 1 else None, "note": None, "data": {}, **values}))
    record(session, clock, principal, Action.UPDATE, "hotline_work_order", resource_id=order.id, detail=step)
    return await _detail(session, clock, order)


async def dispatch(session: AsyncSession, clock: Clock, principal: Principal, order_id: int,
                   data: StepIn) -> WorkOrderDetail:
    """Send the order to its responsible organization (again, after a reopening)."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        return [{"kind": "dispatched", "note": data.note, "data": {"organization_id": order.organization_id}}]

    return await _step(session, clock, principal, order_id, "dispatch", data.request_key, effect)


async def request_extension(session: AsyncSession, clock: Clock, principal: Principal, order_id: int,
                            data: ExtensionRequestIn) -> WorkOrderDetail:
    """The organization asks for more working days, before the deadline."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        return [{"kind": "extension_requested", "note": data.reason, "data": {"working_days": data.working_days}}]

    return await _step(session, clock, principal, order_id, "request_extension", data.request_key, effect)


async def decide_extension(session: AsyncSession, clock: Clock, principal: Principal, order_id: int,
                           data: StepIn, *, approve: bool) -> WorkOrderDetail:
    """A supervisor approves (the deadline moves by the days asked) or refuses the pending request."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        if not approve:
            return [{"kind": "extension_refused", "note": data.note}]
        days = seen.pending_extension_days or 0
        due = await holidays.extended(session, seen.due_at, days)
        return [{"kind": "extension_approved", "note": data.note,
                 "data": {"working_days": days, "due_at": due.isoformat(), "due_before": seen.due_at.isoformat()}}]

    step = "approve_extension" if approve else "refuse_extension"
    return await _step(session, clock, principal, order_id, step, data.request_key, effect)


async def reply(session: AsyncSession, clock: Clock, principal: Principal, order_id: int,
                data: ReplyIn) -> WorkOrderDetail:
    """The organization's answer to the order."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        return [{"kind": "replied", "note": data.reply}]

    return await _step(session, clock, principal, order_id, "reply", data.request_key, effect)


async def close(session: AsyncSession, clock: Clock, principal: Principal, order_id: int,
                data: StepIn) -> WorkOrderDetail:
    """The hotline closes a replied order; one from 12345 owes that system its result (the outbox)."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        close_seq = max(s.seq for s in (await repository.steps_of(session, [order.id]))[order.id]) + 1
        if order.source != "self_received":
            await work_order_outbox.queue_result(session, order, close_seq, now)
        return [{"kind": "closed", "note": data.note}]

    return await _step(session, clock, principal, order_id, "close", data.request_key, effect)


async def callback(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, order_id: int,
                   data: CallbackIn) -> WorkOrderDetail:
    """The caller's satisfaction with the result (回访); dissatisfied, the order reopens with a new deadline."""
    async def effect(order: WorkOrder, seen: Projection, now: datetime) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [{"kind": "callback", "note": data.note,
                                         "data": {"satisfaction": data.satisfaction}}]
        if data.satisfaction == "dissatisfied":
            due = await holidays.deadline(session, settings, order.category, now)
            events.append({"kind": "reopened", "data": {"due_at": due.isoformat()}})
        return events

    return await _step(session, clock, principal, order_id, "callback", data.request_key, effect)


async def remind_due(session: AsyncSession, clock: Clock) -> list[int]:
    """Remind (催办) the dispatched orders due within a day and not yet reminded of that due time; their ids."""
    now = clock.now()
    candidates = await repository.dispatched_orders(session, REMINDER_ROUND)
    reminded = []
    for order_id, steps in (await repository.steps_of(session, candidates)).items():
        seen = project(steps)
        if not seen.needs_reminder(now):
            continue
        order = await repository.order(session, order_id, lock=True)
        steps = (await repository.steps_of(session, [order_id]))[order_id]  # again, under the lock
        seen = project(steps)
        if order is None or not seen.needs_reminder(now):
            continue
        await append_step(session, order.source, steps, {
            "work_order_id": order_id, "seq": max(s.seq for s in steps) + 1, "kind": "reminded", "at": now,
            "actor": REMINDER_ACTOR, "request_key": None, "note": None,
            "data": {"due_at": seen.due_at.isoformat(), "organization_id": order.organization_id}})
        record(session, clock, None, Action.UPDATE, "hotline_work_order", resource_id=order_id,
               detail="reminded: due soon", actor=REMINDER_ACTOR, actor_kind="task")
        reminded.append(order_id)
    if reminded:
        logger.info("work orders reminded before their deadline", extra={"work_order_ids": reminded})
    return reminded
