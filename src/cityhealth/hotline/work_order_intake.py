"""Work orders in: an adapter per 12345 system maps its push to one intake, and the hotline's own complaints.

A push is identified by its system's order id: received again with the same content it is the same order
(answered as such, nothing written); with other content it is refused, naming each field that differs, since
the platform cannot tell which version the 12345 system means. Self-received orders are identified by the
agent's request key the same way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.hotline import holidays
from cityhealth.hotline import work_order_repository as repository
from cityhealth.hotline.work_order_events import project
from cityhealth.hotline.work_order_models import WorkOrder
from cityhealth.hotline.work_order_schemas import CityOrderPush, IntakeResult, ProvinceOrderPush, WorkOrderCreate
from cityhealth.hotline.work_order_statistics import append_step
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

CITY_CATEGORIES = {"zx": "consultation", "qz": "help", "ts": "complaint", "jj": "urgent"}
PROVINCE_CATEGORIES = {"CONSULT": "consultation", "HELP": "help", "COMPLAINT": "complaint", "URGENT": "urgent"}


@dataclass(frozen=True)
class Intake:
    """An order as the platform takes it, whatever its source's shape; `fields` names each in that shape."""

    source: str
    source_order_id: str | None
    category: str
    title: str
    content: str
    organization_code: str | None
    organization_id: int | None
    call_id: int | None
    source_accepted_at: datetime | None
    fields: tuple[tuple[str, str], ...]  # (our name, the source's name)


def from_city(push: CityOrderPush) -> Intake:
    return Intake("city_12345", push.gdbh, CITY_CATEGORIES[push.gdlx], push.bt, push.nr, push.cbdw, None, None,
                  push.slsj.astimezone(UTC), (("category", "gdlx"), ("title", "bt"), ("content", "nr"),
                                              ("organization_code", "cbdw"), ("source_accepted_at", "slsj")))


def from_province(push: ProvinceOrderPush) -> Intake:
    return Intake("province_12345", push.orderNo, PROVINCE_CATEGORIES[push.orderType], push.title, push.content,
                  push.handleOrgCode, None, None, push.acceptTime.astimezone(UTC),
                  (("category", "orderType"), ("title", "title"), ("content", "content"),
                   ("organization_code", "handleOrgCode"), ("source_accepted_at", "acceptTime")))


def from_agent(data: WorkOrderCreate) -> Intake:
    return Intake("self_received", None, data.category, data.title, data.content, None, data.organization_id,
                  data.call_id, None, (("category", "category"), ("title", "title"), ("content", "content"),
                                       ("organization_id", "organization_id"), ("call_id", "call_id")))


def _compared(intake: Intake) -> dict[str, str]:
    values = asdict(intake)
    return {ours: "" if values[ours] is None else (values[ours].isoformat() if isinstance(values[ours], datetime)
                                                 else str(values[ours])) for ours, _ in intake.fields}


def fingerprint(intake: Intake) -> str:
    return hashlib.sha256(json.dumps(_compared(intake), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _held_values(order: WorkOrder, organization_code: str | None) -> dict[str, str]:
    accepted = order.source_accepted_at
    return {"category": order.category, "title": order.title, "content": order.content,
            "organization_code": organization_code or "", "organization_id": str(order.organization_id),
            "call_id": "" if order.call_id is None else str(order.call_id),
            "source_accepted_at": "" if accepted is None else accepted.astimezone(UTC).isoformat()}


async def _same_or_refused(session: AsyncSession, held: WorkOrder, intake: Intake, key_field: str) -> None:
    """A repeated intake: nothing when its content is the held order's, refused naming what differs otherwise."""
    if held.fingerprint == fingerprint(intake):
        return
    organization = await registry.organization_by_id(session, held.organization_id)
    before = _held_values(held, organization.code if organization else None)
    now = _compared(intake)
    differ = [theirs for ours, theirs in intake.fields if before.get(ours) != now[ours]]
    shown = ", ".join(differ) or "content"
    raise Conflict(f"this order was received before with other content (differs in: {shown}); a changed order "
                   "needs a new order id", code="work_order_changed", field=differ[0] if differ else key_field,
                   value=shown, rule="hotline.work_order.same_content_per_id",
                   errors=[{"field": name, "rule": "hotline.work_order.same_content_per_id",
                            "message": "differs from the order received before"} for name in differ])


async def _organization_id(session: AsyncSession, intake: Intake) -> int:
    if intake.organization_code is not None:
        field = next(theirs for ours, theirs in intake.fields if ours == "organization_code")
        found = await registry.organization_by_code(session, intake.organization_code)
        if found is None:
            raise ValidationFailed(f"no organization has code {intake.organization_code} in the registry",
                                   field=field, value=intake.organization_code,
                                   rule="hotline.work_order.organization_known")
        return found.id
    assert intake.organization_id is not None  # noqa: S101 - from_agent always sets one of the two
    if await registry.organization_by_id(session, intake.organization_id) is None:
        raise ValidationFailed(f"no organization {intake.organization_id} in the registry", field="organization_id",
                               value=intake.organization_id, rule="hotline.work_order.organization_known")
    return intake.organization_id


async def take(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
               intake: Intake, intake_key: str) -> IntakeResult:
    """Receive an order once per intake key: a new one is due by its category's deadline from now."""
    held = await repository.order_by_key(session, intake_key)
    if held is None:
        organization_id = await _organization_id(session, intake)
        if intake.call_id is not None and not await repository.call_exists(session, intake.call_id):
            raise ValidationFailed(f"no hotline call {intake.call_id}", field="call_id", value=intake.call_id,
                                   rule="hotline.work_order.call_known")
        now = clock.now()
        due = await holidays.deadline(session, settings, intake.category, now)
        order_id = await repository.insert_order(session, {
            "intake_key": intake_key, "source": intake.source, "source_order_id": intake.source_order_id,
            "fingerprint": fingerprint(intake), "category": intake.category, "title": intake.title,
            "content": intake.content, "organization_id": organization_id, "call_id": intake.call_id,
            "source_accepted_at": intake.source_accepted_at, "received_at": now, "created_by": principal.subject})
        if order_id is not None:
            await append_step(session, intake.source, [], {
                "work_order_id": order_id, "seq": 1, "kind": "received", "at": now, "actor": principal.subject,
                "request_key": None, "note": None,
                "data": {"due_at": due.isoformat(), "working_days": holidays.working_days_for(settings,
                                                                                              intake.category)}})
            record(session, clock, principal, Action.CREATE, "hotline_work_order", resource_id=order_id,
                   detail=f"source={intake.source}")
            return IntakeResult(work_order_id=order_id, created=True, state="received", due_at=due)
        held = await repository.order_by_key(session, intake_key)  # another push of it won the race
        if held is None:
            raise NotFound("the order was received concurrently and is not visible yet; send it again",
                           field="intake_key", value=intake_key, rule="hotline.work_order.retry")
    await _same_or_refused(session, held, intake, "intake_key")
    projection = project((await repository.steps_of(session, [held.id]))[held.id])
    record(session, clock, principal, Action.CREATE, "hotline_work_order", resource_id=held.id,
           detail=f"source={intake.source}; repeated")
    return IntakeResult(work_order_id=held.id, created=False, state=projection.state,
                        due_at=projection.due_at)


async def push_from_city(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                         push: CityOrderPush) -> IntakeResult:
    return await take(session, clock, settings, principal, from_city(push), f"city_12345:{push.gdbh}")


async def push_from_province(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                             push: ProvinceOrderPush) -> IntakeResult:
    return await take(session, clock, settings, principal, from_province(push), f"province_12345:{push.orderNo}")


async def create_self_received(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                               data: WorkOrderCreate) -> IntakeResult:
    """A complaint an agent took (自受理), optionally on one of the hotline's calls."""
    return await take(session, clock, settings, principal, from_agent(data),
                      f"self_received:{principal.subject}:{data.request_key}")
