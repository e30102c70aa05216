"""What the resident booking pages ask the domains, and the booking rule's refusals in Chinese.

- hospitals and departments: `registry.service.list_organizations`, `registry.departments`;
- a day's sessions: `booking.service.search` (the availability search), each then answered by the booking
  rule for the residents' channel at this moment (`booking.service.channel_answers`), so what a page
  offers can be held;
- holding, confirming, cancelling and listing: `booking.service`, as the API calls it, with a refusal
  audited as the API's booking routes audit theirs.

The web reads the booking room and the registry only through their `service` modules (and their schemas):
an import-linter contract in pyproject.toml keeps it so.

A slot of the SMART Scheduling Links feed is one session (booking/publication.py), so a slot id is a
session id: the feed's deep link `/booking/slots/{slot_id}` opens that session's page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import service as booking_service
from cityhealth.booking.schemas import AvailabilityRead, BookingCreate, BookingRead, CancelRequest, HoldCreate
from cityhealth.booking.service import BookingRuntime, context_for
from cityhealth.clock import BUSINESS_TZ, Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import DomainError
from cityhealth.registry import departments as registry_departments
from cityhealth.registry import service as registry_service
from cityhealth.registry.schemas import DepartmentRead, OrganizationRead
from cityhealth.security.audit import Action, Outcome, record, record_now
from cityhealth.security.crypto import FieldCipher, field_cipher
from cityhealth.security.principals import Principal

# A resident signed in on the platform's own site books as a resident of the 12320 platform does
# (booking/channels.py: a resident token without a client app is the online_12320 channel).
CHANNEL = "online_12320"
MAX_HOSPITALS = 500
FEE_CLASSES = {"general": "普通号", "expert": "专家号", "special_needs": "特需号"}
STATUSES = {"held": "已保留，待确认", "booked": "已预约", "checked_in": "已取号", "cancelled": "已取消",
            "expired": "保留已过期", "no_show": "爽约", "rescheduled": "已改约"}

# The booking rule's refusals as a resident reads them; the rule's own text (English, for API clients) is
# never shown. Codes without an entry fall back to a generic sentence naming nothing personal.
REFUSALS = {
    "sold_out": "该时段的号源已约满，请选择其他时段。",
    "quota_exhausted": "该时段留给网上预约的号源已用完，可拨打医院电话或到窗口咨询。",
    "same_day_not_allowed": "该医院不接受当天预约，请选择明天及以后的时段。",
    "session_past": "该时段已开始或已结束，不能再预约。",
    "session_suspended": "该时段已停诊，不能预约。",
    "not_released": "该时段的号源尚未开放预约。",
    "next_day_closed": "明天的号源今天已过预约截止时间。",
    "same_department_day": "您当天在该科室已有预约，同一科室每天只能预约一次。",
    "daily_department_cap": "您当天已在两个科室有预约，每天最多预约两个科室。",
    "overlapping_booking": "您在这个时间段已有其他预约。",
    "resident_banned": "因爽约次数过多，您的预约权限暂被停用。",
    "hold_expired": "保留时间已过，号源已释放，请重新预约。",
    "not_a_hold": "这条预约不是待确认状态，无需再次确认。",
    "cancellation_closed": "已过该医院规定的取消截止时间，不能在线取消。",
    "not_cancellable": "这条预约当前的状态不能取消。",
    "booking_not_found": "找不到这条预约。",
    "session_not_found": "找不到这个号源。",
    "resident_not_linked": "您的账户尚未完成实名关联，暂不能预约。",
    "idempotency_key_in_flight": "上一次提交仍在处理中，请稍候刷新页面。",
    "idempotency_key_reused": "表单已提交过，请回到号源页面重新预约。",
    "idempotency_key_missing": "表单已过期，请刷新页面后重试。",
    "idempotency_key_invalid": "表单已过期，请刷新页面后重试。",
}
REFUSED = "暂时无法办理，请稍后再试。"


def refusal_text(error: DomainError) -> str:
    return REFUSALS.get(error.code, REFUSED)


def cipher_of(settings: Settings) -> FieldCipher:
    return field_cipher(settings)


def local_time(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%H:%M")


def local_moment(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


# --- choosing a hospital, a department and a day -----------------------------------------------------------


async def hospitals(session: AsyncSession, clock: Clock) -> list[OrganizationRead]:
    page = await registry_service.list_organizations(session, clock, kind="hospital", active=True,
                                                     limit=MAX_HOSPITALS)
    return page.items


async def departments(session: AsyncSession, organization_id: int) -> list[DepartmentRead]:
    page = await registry_departments.list_departments(session, organization_id, active=True)
    return page.items


@dataclass(frozen=True)
class SlotView:
    """One session as a resident sees it: where, who, when, which fee class, and whether it can be booked."""

    id: int
    organization_id: int
    hospital: str
    department: str
    doctor: str | None
    service_date: date
    starts: str
    ends: str
    fee_class: str
    left: int
    refusal: str | None  # None: the residents' channel may hold a slot now

    @property
    def bookable(self) -> bool:
        return self.refusal is None


class _Names:
    """Registry names of the sessions' hospitals, departments and doctors, each read once per page."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.hospitals: dict[int, str] = {}
        self.departments: dict[int, str] = {}
        self.doctors: dict[int, str] = {}

    async def hospital(self, organization_id: int) -> str:
        if organization_id not in self.hospitals:
            found = await registry_service.get_organization(self.session, organization_id)
            self.hospitals[organization_id] = found.name
        return self.hospitals[organization_id]

    async def department(self, organization_id: int, department_id: int) -> str:
        if department_id not in self.departments:
            found = await registry_departments.get_department(self.session, organization_id, department_id)
            self.departments[department_id] = found.local_name
        return self.departments[department_id]

    async def doctor(self, organization_id: int, practitioner_id: int | None) -> str | None:
        if practitioner_id is None:
            return None
        if practitioner_id not in self.doctors:
            found = await registry_departments.get_practitioner(self.session, organization_id, practitioner_id)
            self.doctors[practitioner_id] = f"{found.name}（{found.title}）" if found.title else found.name
        return self.doctors[practitioner_id]


async def _view(names: _Names, answer: booking_service.ChannelAnswer, *, session_id: int, organization_id: int,
                department_id: int, practitioner_id: int | None, service_date: date, starts_at: datetime,
                ends_at: datetime, fee_class: str) -> SlotView:
    return SlotView(
        id=session_id, organization_id=organization_id, hospital=await names.hospital(organization_id),
        department=await names.department(organization_id, department_id),
        doctor=await names.doctor(organization_id, practitioner_id), service_date=service_date,
        starts=local_time(starts_at), ends=local_time(ends_at), fee_class=FEE_CLASSES.get(fee_class, fee_class),
        left=answer.left if answer.refusal is None else 0,
        refusal=None if answer.refusal is None else refusal_text(answer.refusal))


async def day_sessions(database: Database, clock: Clock, runtime: BookingRuntime, *, organization_id: int,
                       day: date) -> list[AvailabilityRead]:
    """The hospital's sessions of `day`, as the availability search finds them (on its own connection)."""
    return await booking_service.search(database, clock, runtime, None, organization_id=organization_id,
                                        department_id=None, practitioner_id=None, date_from=day, date_to=day)


async def day_slots(session: AsyncSession, clock: Clock, found: list[AvailabilityRead],
                    department_id: int | None) -> list[SlotView]:
    """The sessions found (in one department, or all), each with the booking rule's answer now."""
    chosen = [item for item in found if department_id is None or item.department_id == department_id]
    answers = await booking_service.channel_answers(session, clock, [item.id for item in chosen], CHANNEL)
    names = _Names(session)
    return [await _view(names, answers[item.id], session_id=item.id, organization_id=item.organization_id,
                        department_id=item.department_id, practitioner_id=item.practitioner_id,
                        service_date=item.service_date, starts_at=item.starts_at, ends_at=item.ends_at,
                        fee_class=item.fee_class)
            for item in chosen if item.id in answers]


async def slot(session: AsyncSession, clock: Clock, slot_id: int) -> SlotView:
    """One session (a feed's slot) with the rule's answer now; 404 for an unknown one."""
    found = await booking_service.get_session(session, slot_id)
    answers = await booking_service.channel_answers(session, clock, [slot_id], CHANNEL)
    return await _view(_Names(session), answers[slot_id], session_id=found.id,
                       organization_id=found.organization_id, department_id=found.department_id,
                       practitioner_id=found.practitioner_id, service_date=found.service_date,
                       starts_at=found.starts_at, ends_at=found.ends_at, fee_class=found.fee_class)


# --- holding, confirming, cancelling, listing -----------------------------------------------------------------


def _payload(**fields: object) -> bytes:
    """The form's request as the API would carry it: the idempotency fingerprint covers the same fields."""
    return json.dumps(fields).encode()


async def _replay_audited(database: Database, clock: Clock, principal: Principal,
                          result: booking_service.WriteResult) -> BookingRead:
    if result.replayed:
        await record_now(database, clock, principal, Action.READ, booking_service.RESOURCE,
                         resident_ids=[principal.resident_id], outcome=Outcome.SUCCESS, detail="idempotent replay")
    return BookingRead.model_validate_json(result.body)


async def hold(app: FastAPI, principal: Principal, slot_id: int, key: str, path: str) -> BookingRead:
    """Hold a slot of the session for the signed-in resident (the form's key makes a resubmission a replay)."""
    state = app.state
    idem = context_for(principal.subject, key, "POST", path, _payload(session_id=slot_id))
    result = await booking_service.hold(state.database, state.clock, cipher_of(state.settings),
                                        booking_service.runtime_of(app.state), principal,
                                        HoldCreate(session_id=slot_id), idem)
    return await _replay_audited(state.database, state.clock, principal, result)


async def confirm(tx: AsyncSession, app: FastAPI, principal: Principal, hold_id: int, key: str,
                  path: str) -> booking_service.WriteResult:
    """Confirm the resident's hold, in the caller's transaction."""
    state = app.state
    idem = context_for(principal.subject, key, "POST", path, _payload(hold_id=hold_id))
    return await booking_service.confirm_hold(tx, state.clock, cipher_of(state.settings), principal,
                                              BookingCreate(hold_id=hold_id), idem)


async def confirmed(app: FastAPI, principal: Principal, result: booking_service.WriteResult) -> BookingRead:
    """The confirmed booking, its replay audited once the confirmation's transaction is over."""
    return await _replay_audited(app.state.database, app.state.clock, principal, result)


async def cancel(tx: AsyncSession, app: FastAPI, principal: Principal, booking_id: int) -> BookingRead:
    state = app.state
    return await booking_service.cancel(tx, state.clock, cipher_of(state.settings),
                                        booking_service.runtime_of(app.state), principal, booking_id, CancelRequest())


async def audit_refusal(database: Database, clock: Clock, principal: Principal, error: Exception) -> DomainError:
    """Audit a refused write as the booking API's routes do (unless the service has), and return its error."""
    if isinstance(error, booking_service.Refused):
        await booking_service.audit_refusal(database, clock, principal, error)
        return error.error
    if not isinstance(error, DomainError):
        raise error
    if not booking_service.audit_settled(error):
        denied = error.status in (403, 404)
        await record_now(database, clock, principal, Action.DENIED if denied else Action.UPDATE,
                         booking_service.RESOURCE, resident_ids=[principal.resident_id],
                         outcome=Outcome.DENIED if denied else Outcome.FAILURE, detail=error.code)
    return error


@dataclass(frozen=True)
class MyBooking:
    booking: BookingRead
    hospital: str
    department: str
    status: str
    estimated: str
    hold_until: str | None


async def my_bookings(session: AsyncSession, clock: Clock, principal: Principal) -> list[MyBooking]:
    """The resident's own bookings (the read audited by the service), with the registry's names."""
    names = _Names(session)
    views = []
    for item in await booking_service.own_bookings(session, clock, principal):
        views.append(MyBooking(
            item, await names.hospital(item.organization_id),
            await names.department(item.organization_id, item.department_id),
            STATUSES.get(item.status, item.status), local_moment(item.estimated_at),
            local_moment(item.hold_expires_at) if item.hold_expires_at else None))
    return views


def audit_view(session: AsyncSession, clock: Clock, principal: Principal | None, action: Action,
               slot_id: int | None = None) -> None:
    """A signed-in resident looking at sessions leaves the trace the API's availability routes leave."""
    if principal is not None and principal.resident_id is not None:
        record(session, clock, principal, action, "booking_session", resource_id=slot_id,
               resident_ids=[principal.resident_id])

