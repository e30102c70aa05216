"""Work-order API: the 12345 systems' pushes, the hotline's own orders, each step of an order's life, the
holiday calendar. Agents and supervisors see every order; an organization's staff their organization's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.hotline import holidays, work_order_intake, work_orders
from cityhealth.hotline.work_order_schemas import (
    CallbackIn,
    Category,
    CityOrderPush,
    ExtensionRequestIn,
    HolidayYearIn,
    HolidayYearRead,
    IntakeResult,
    ProvinceOrderPush,
    ReplyIn,
    Source,
    State,
    StepIn,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderRead,
)
from cityhealth.security.dependencies import refusals_audited, require, require_any
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/hotline", tags=["hotline work orders"],
                   route_class=refusals_audited("hotline_work_order"))
CitySystem = Annotated[Principal, Depends(require(Scope.HOTLINE_12345_CITY))]
ProvinceSystem = Annotated[Principal, Depends(require(Scope.HOTLINE_12345_PROVINCE))]
Hotline = Annotated[Principal, Depends(require(Scope.HOTLINE_WORK_ORDERS))]
Handler = Annotated[Principal, Depends(require(Scope.HOTLINE_WORK_ORDERS_HANDLE))]
Reader = Annotated[Principal, Depends(require_any(Scope.HOTLINE_WORK_ORDERS, Scope.HOTLINE_WORK_ORDERS_HANDLE))]
Supervisor = Annotated[Principal, Depends(require(Scope.HOTLINE_WORK_ORDERS, Scope.HOTLINE_SUPERVISE))]
Admin = Annotated[Principal, Depends(require(Scope.HOTLINE_ADMIN))]
ORDERS = "/work-orders"


@router.post(f"{ORDERS}/intake/city-12345", response_model=IntakeResult,
             summary="The city 12345 system pushes an order (idempotent on its order id, gdbh)")
async def push_city_order(principal: CitySystem, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                          push: CityOrderPush) -> IntakeResult:
    return await work_order_intake.push_from_city(session, clock, settings, principal, push)


@router.post(f"{ORDERS}/intake/province-12345", response_model=IntakeResult,
             summary="The provincial 12345 system pushes an order (idempotent on its order id, orderNo)")
async def push_province_order(principal: ProvinceSystem, session: SessionDep, clock: ClockDep,
                              settings: SettingsDep, push: ProvinceOrderPush) -> IntakeResult:
    return await work_order_intake.push_from_province(session, clock, settings, principal, push)


@router.post(ORDERS, response_model=IntakeResult,
             summary="Create a self-received order (a complaint taken by the hotline, optionally on a call)")
async def create_work_order(principal: Hotline, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                            data: WorkOrderCreate) -> IntakeResult:
    return await work_order_intake.create_self_received(session, clock, settings, principal, data)


@router.get(ORDERS, response_model=list[WorkOrderRead],
            summary="Work orders, newest first, filtered (an organization's staff: their organization's)")
async def list_work_orders(principal: Reader, session: SessionDep, clock: ClockDep,
                           source: Source | None = None, category: Category | None = None,
                           state: State | None = None,
                           q: Annotated[str | None, Query(min_length=1, max_length=100,
                                                          description="Text in the title or content")] = None,
                           organization_id: Annotated[RowId | None, Query()] = None,
                           received_from: Annotated[AwareDatetime | None, Query()] = None,
                           received_to: Annotated[AwareDatetime | None, Query()] = None,
                           before_id: Annotated[RowId | None, Query()] = None,
                           limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[WorkOrderRead]:
    return await work_orders.list_orders(session, clock, principal, source=source, category=category, state=state,
                                         text=q, organization_id=organization_id, received_from=received_from,
                                         received_to=received_to, before_id=before_id, limit=limit)


@router.get(f"{ORDERS}/{{work_order_id}}", response_model=WorkOrderDetail,
            summary="A work order with its events, state and SLA status")
async def get_work_order(principal: Reader, session: SessionDep, clock: ClockDep,
                         work_order_id: RowId) -> WorkOrderDetail:
    return await work_orders.get_order(session, clock, principal, work_order_id)


@router.post(f"{ORDERS}/{{work_order_id}}/dispatch", response_model=WorkOrderDetail,
             summary="Dispatch the order to its responsible organization")
async def dispatch_work_order(principal: Hotline, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                              data: StepIn) -> WorkOrderDetail:
    return await work_orders.dispatch(session, clock, principal, work_order_id, data)


@router.post(f"{ORDERS}/{{work_order_id}}/reply", response_model=WorkOrderDetail,
             summary="The responsible organization replies")
async def reply_work_order(principal: Handler, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                           data: ReplyIn) -> WorkOrderDetail:
    return await work_orders.reply(session, clock, principal, work_order_id, data)


@router.post(f"{ORDERS}/{{work_order_id}}/extension-request", response_model=WorkOrderDetail,
             summary="The responsible organization asks for an extension, before the deadline")
async def request_extension(principal: Handler, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                            data: ExtensionRequestIn) -> WorkOrderDetail:
    return await work_orders.request_extension(session, clock, principal, work_order_id, data)


@router.post(f"{ORDERS}/{{work_order_id}}/extension-request/approve", response_model=WorkOrderDetail,
             summary="A supervisor approves the pending extension (before the deadline)")
async def approve_extension(principal: Supervisor, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                            data: StepIn) -> WorkOrderDetail:
    return await work_orders.decide_extension(session, clock, principal, work_order_id, data, approve=True)


@router.post(f"{ORDERS}/{{work_order_id}}/extension-request/refuse", response_model=WorkOrderDetail,
             summary="A supervisor refuses the pending extension")
async def refuse_extension(principal: Supervisor, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                           data: StepIn) -> WorkOrderDetail:
    return await work_orders.decide_extension(session, clock, principal, work_order_id, data, approve=False)


@router.post(f"{ORDERS}/{{work_order_id}}/close", response_model=WorkOrderDetail,
             summary="Close a replied order; its result goes back to the 12345 system it came from")
async def close_work_order(principal: Hotline, session: SessionDep, clock: ClockDep, work_order_id: RowId,
                           data: StepIn) -> WorkOrderDetail:
    return await work_orders.close(session, clock, principal, work_order_id, data)


@router.post(f"{ORDERS}/{{work_order_id}}/callback", response_model=WorkOrderDetail,
             summary="Record the satisfaction callback; dissatisfied reopens the order")
async def callback_work_order(principal: Hotline, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                              work_order_id: RowId, data: CallbackIn) -> WorkOrderDetail:
    return await work_orders.callback(session, clock, settings, principal, work_order_id, data)


Year = Annotated[int, Path(ge=1949, le=2200, description="the calendar year")]


@router.get("/holidays/{year}", response_model=HolidayYearRead,
            summary="A year's public holidays and adjusted working weekends, and where they come from")
async def get_holidays(principal: Reader, session: SessionDep, year: Year) -> HolidayYearRead:
    return await holidays.get_year(session, year)


@router.put("/holidays/{year}", response_model=HolidayYearRead,
            summary="Set a year's public holidays and adjusted working weekends")
async def put_holidays(principal: Admin, session: SessionDep, clock: ClockDep, year: Year,
                       data: HolidayYearIn) -> HolidayYearRead:
    return await holidays.set_year(session, clock, principal, year, data)
