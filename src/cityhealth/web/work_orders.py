"""The work-order pages: the hotline's (every order; create one, `new?call_id=N` linking it to call N; dispatch,
close, callback, a supervisor's extension decisions) and an organization's (its own orders: reply, ask for an
extension). Every step goes through the same use cases as the API, so a page and a client see one rule.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, Forbidden, ValidationFailed
from cityhealth.hotline import work_order_intake, work_orders
from cityhealth.hotline.work_order_schemas import (
    CallbackIn,
    ExtensionRequestIn,
    ReplyIn,
    StepIn,
    WorkOrderCreate,
)
from cityhealth.registry import service as registry_service
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.principals import Principal, Scope
from cityhealth.web.session import CSRF_FIELD, csrf_ok, require_login
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)
Agent = Annotated[Principal, Depends(require_login(Scope.HOTLINE_WORK_ORDERS))]
Handler = Annotated[Principal, Depends(require_login(Scope.HOTLINE_WORK_ORDERS_HANDLE))]
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=128)]
Key = Annotated[str, Form(max_length=64)]
Note = Annotated[str, Form(max_length=2000)]
HOTLINE = "/hotline/work-orders"
ORGANIZATION = "/hotline/organization-orders"
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
LABELS = {
    "source": {"city_12345": "市 12345", "province_12345": "省 12345", "self_received": "自受理"},
    "category": {"consultation": "咨询", "help": "求助", "complaint": "投诉", "urgent": "紧急"},
    "state": {"received": "已受理", "dispatched": "已派单", "replied": "已答复", "closed": "已办结",
              "reopened": "已重办"},
    "sla": {"on_time": "正常", "due_soon": "即将到期", "overdue": "已超期", "closed_late": "超期办结"},
    "callback": {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"},
    "kind": {"received": "受理", "dispatched": "派单", "reminded": "催办", "extension_requested": "申请延期",
             "extension_approved": "同意延期", "extension_refused": "不同意延期", "replied": "答复",
             "closed": "办结", "result_returned": "结果已回传 12345", "callback": "回访", "reopened": "重办"},
}
# A step's form field names and its request shape, per page set.
HOTLINE_STEPS: dict[str, type[BaseModel]] = {"dispatch": StepIn, "close": StepIn, "callback": CallbackIn,
                                              "approve": StepIn, "refuse": StepIn}
ORGANIZATION_STEPS: dict[str, type[BaseModel]] = {"reply": ReplyIn, "extension": ExtensionRequestIn}


def _key() -> str:
    return secrets.token_urlsafe(18)


async def _refused(database: Any, clock: Any, principal: Principal, error: DomainError) -> str:
    """A refusal's message for the page, audited (the page's transaction had nothing to keep)."""
    denied = error.status in (403, 404)
    await record_now(database, clock, principal, Action.DENIED if denied else Action.UPDATE, "hotline_work_order",
                     outcome=Outcome.DENIED if denied else Outcome.FAILURE, detail=error.code)
    return error.message


def _invalid(error: ValidationError) -> ValidationFailed:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return ValidationFailed(f"{where}: {first['msg']}", field=where, rule="form.field")


async def _list(request: Request, database: Any, clock: Any, principal: Principal, base: str) -> HTMLResponse:
    async with database.transaction() as session:
        orders = await work_orders.list_orders(session, clock, principal, limit=200)
    return page(request, "work_orders.html", orders=orders, base=base, labels=LABELS, now=clock.now())


async def _order_page(request: Request, database: Any, clock: Any, principal: Principal, base: str,
                      order_id: int, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    async with database.transaction() as session:
        order = await work_orders.get_order(session, clock, principal, order_id)
    return page(request, "work_order.html", status_code=status_code, order=order, base=base, labels=LABELS,
                error=error, request_key=_key(), is_supervisor=principal.has(Scope.HOTLINE_SUPERVISE),
                is_hotline=base == HOTLINE)


@router.get(HOTLINE, response_class=HTMLResponse)
async def hotline_orders(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep) -> HTMLResponse:
    return await _list(request, database, clock, principal, HOTLINE)


async def _new_page(request: Request, database: Any, clock: Any, *, call_id: int | None, error: str | None = None,
                    form: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with database.transaction() as session:
        organizations = (await registry_service.list_organizations(session, clock, active=True, limit=500)).items
    return page(request, "work_order_new.html", status_code=status_code, call_id=call_id, error=error,
                organizations=organizations, labels=LABELS, request_key=_key(), form=form or {})


@router.get(f"{HOTLINE}/new", response_class=HTMLResponse)
async def new_order(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                    call_id: RowId | None = None) -> HTMLResponse:
    return await _new_page(request, database, clock, call_id=call_id)


@router.post(f"{HOTLINE}/new", response_class=HTMLResponse)
async def create_order(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                       settings: SettingsDep, csrf_token: Csrf = "", request_key: Key = "",
                       category: Annotated[str, Form(max_length=16)] = "",
                       title: Annotated[str, Form(max_length=200)] = "",
                       content: Annotated[str, Form(max_length=4000)] = "",
                       organization_id: Annotated[str, Form(max_length=12)] = "",
                       call_id: Annotated[str, Form(max_length=12)] = "") -> Response:
    form = {"category": category, "title": title, "content": content, "organization_id": organization_id}
    linked = int(call_id) if call_id.isdigit() else None
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _new_page(request, database, clock, call_id=linked, error=STALE_FORM, form=form,
                               status_code=403)
    try:
        try:
            data = WorkOrderCreate.model_validate({"request_key": request_key, **form, "call_id": call_id or None})
        except ValidationError as invalid:
            raise _invalid(invalid) from invalid
        async with database.transaction() as session:
            created = await work_order_intake.create_self_received(session, clock, settings, principal, data)
    except DomainError as error:
        message = await _refused(database, clock, principal, error)
        return await _new_page(request, database, clock, call_id=linked, error=message, form=form,
                               status_code=error.status)
    return RedirectResponse(f"{HOTLINE}/{created.work_order_id}", status_code=303)


@router.get(f"{HOTLINE}/{{order_id}}", response_class=HTMLResponse)
async def hotline_order(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                        order_id: RowId) -> HTMLResponse:
    return await _order_page(request, database, clock, principal, HOTLINE, order_id)


async def _take(request: Request, principal: Principal, database: Any, clock: Any, settings: Any, base: str,
                order_id: int, step: str, form: dict[str, Any]) -> Response:
    if not csrf_ok(request, settings, form.pop("csrf_token"), principal.session_id):
        return await _order_page(request, database, clock, principal, base, order_id, error=STALE_FORM,
                                 status_code=403)
    shapes = HOTLINE_STEPS if base == HOTLINE else ORGANIZATION_STEPS
    try:
        try:
            data: Any = shapes[step].model_validate({name: value for name, value in form.items() if value != ""})
        except ValidationError as invalid:
            raise _invalid(invalid) from invalid
        async with database.transaction() as session:
            if step == "dispatch":
                await work_orders.dispatch(session, clock, principal, order_id, data)
            elif step == "close":
                await work_orders.close(session, clock, principal, order_id, data)
            elif step == "callback":
                await work_orders.callback(session, clock, settings, principal, order_id, data)
            elif step in ("approve", "refuse"):
                if not principal.has(Scope.HOTLINE_SUPERVISE):
                    raise Forbidden("only a supervisor decides an extension", code="insufficient_scope",
                                    field="scope", value=Scope.HOTLINE_SUPERVISE.value)
                await work_orders.decide_extension(session, clock, principal, order_id, data,
                                                   approve=step == "approve")
            elif step == "reply":
                await work_orders.reply(session, clock, principal, order_id, data)
            else:
                await work_orders.request_extension(session, clock, principal, order_id, data)
    except DomainError as error:
        message = await _refused(database, clock, principal, error)
        if error.status == 404:
            raise
        return await _order_page(request, database, clock, principal, base, order_id, error=message,
                                 status_code=error.status)
    return RedirectResponse(f"{base}/{order_id}", status_code=303)


@router.post(f"{HOTLINE}/{{order_id}}/{{step}}", response_class=HTMLResponse)
async def hotline_step(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                       settings: SettingsDep, order_id: RowId, step: str, csrf_token: Csrf = "",
                       request_key: Key = "", note: Note = "",
                       satisfaction: Annotated[str, Form(max_length=32)] = "") -> Response:
    if step not in HOTLINE_STEPS:
        raise ValidationFailed(f"no step {step!r}", field="step", value=step, rule="form.step")
    form = {"csrf_token": csrf_token, "request_key": request_key, "note": note}
    if step == "callback":
        form["satisfaction"] = satisfaction
    return await _take(request, principal, database, clock, settings, HOTLINE, order_id, step, form)


@router.get(ORGANIZATION, response_class=HTMLResponse)
async def organization_orders(request: Request, principal: Handler, database: DatabaseDep,
                              clock: ClockDep) -> HTMLResponse:
    return await _list(request, database, clock, principal, ORGANIZATION)


@router.get(f"{ORGANIZATION}/{{order_id}}", response_class=HTMLResponse)
async def organization_order(request: Request, principal: Handler, database: DatabaseDep, clock: ClockDep,
                             order_id: RowId) -> HTMLResponse:
    return await _order_page(request, database, clock, principal, ORGANIZATION, order_id)


@router.post(f"{ORGANIZATION}/{{order_id}}/{{step}}", response_class=HTMLResponse)
async def organization_step(request: Request, principal: Handler, database: DatabaseDep, clock: ClockDep,
                            settings: SettingsDep, order_id: RowId, step: str, csrf_token: Csrf = "",
                            request_key: Key = "", reply: Note = "", reason: Note = "",
                            working_days: Annotated[str, Form(max_length=4)] = "") -> Response:
    if step not in ORGANIZATION_STEPS:
        raise ValidationFailed(f"no step {step!r}", field="step", value=step, rule="form.step")
    form: dict[str, Any] = {"csrf_token": csrf_token, "request_key": request_key}
    form.update({"reply": reply} if step == "reply" else {"reason": reason, "working_days": working_days})
    return await _take(request, principal, database, clock, settings, ORGANIZATION, order_id, step, form)
