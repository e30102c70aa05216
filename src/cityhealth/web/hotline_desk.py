"""The hotline's agent desk and supervisor pages, over the desk's use cases (hotline/desk*.py).

The desk shows the agent's open calls; within the chosen one the agent identifies the caller, books,
cancels or moves the caller's bookings, searches the knowledge base and opens a work order; beside it, the
call-back list of suspended clinics. Numbers are masked everywhere except the caller's own view inside the
open call and the call-back action (the number to dial). Forms post with a CSRF token and come back to the
desk (post, redirect, get) with a notice; a refusal is shown on the desk with its status.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityhealth.booking import service as booking
from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, ValidationFailed
from cityhealth.hotline import desk, desk_callbacks, desk_supervisor, knowledge_answers
from cityhealth.hotline.desk_schemas import CallbackDial, CallbackResultIn, IdentifyIn
from cityhealth.hotline.knowledge_index import index_of
from cityhealth.security.principals import Principal, Scope
from cityhealth.web.session import CSRF_FIELD, csrf_ok
from cityhealth.web.session import require_login as _login
from cityhealth.web.templating import page

router = APIRouter(prefix="/hotline", include_in_schema=False)

Agent = Annotated[Principal, Depends(_login(Scope.HOTLINE_CALLS, Scope.BOOKING_WRITE))]
Supervisor = Annotated[Principal, Depends(_login(Scope.HOTLINE_SUPERVISE))]
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=128)]
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
NOTICES = {"identified": "已确认来电人身份。", "booked": "已为来电人预约（电话渠道）。", "cancelled": "已取消预约。",
           "rescheduled": "已改约。", "reached": "回访已完成。", "not_reached": "已记录：未联系上。",
           "several": "多位居民符合条件，请询问身份证号。", "nobody": "未找到符合条件的居民。"}


def _optional(value: str) -> str | None:
    return value.strip() or None


async def _desk(request: Request, principal: Principal, call_id: int | None, *, q: str | None = None,
                notice: str | None = None, error: str | None = None, dialled: CallbackDial | None = None,
                status_code: int = 200) -> HTMLResponse:
    state = request.app.state
    async with state.database.transaction() as session:
        calls = await desk.open_calls(session, state.clock, state.settings, principal)
        callbacks = await desk_callbacks.callback_list(session, state.clock, state.settings, principal, limit=50)
        hits = None
        if q:
            try:
                hits = await knowledge_answers.search(session, state.clock, index_of(state), q, limit=5)
            except DomainError as exc:
                error, hits = exc.message, []
    current = next((call for call in calls if call.id == call_id), calls[0] if calls else None)
    return page(request, "hotline_desk.html", status_code=status_code, calls=calls, current=current,
                callbacks=callbacks, q=q or "", hits=hits, notice=NOTICES.get(notice or ""), error=error,
                dialled=dialled, request_key=secrets.token_urlsafe(18))


def _back(call_id: int | None, notice: str) -> RedirectResponse:
    target = f"/hotline/desk?notice={notice}" + (f"&call_id={call_id}" if call_id else "")
    return RedirectResponse(target, status_code=303)


def _message(exc: DomainError) -> tuple[str, int]:
    return f"{exc.message}（{exc.code}）", exc.status


@router.get("/desk", response_class=HTMLResponse)
async def desk_page(request: Request, principal: Agent, call_id: RowId | None = None,
                    q: Annotated[str | None, Query(max_length=200)] = None,
                    notice: Annotated[str | None, Query(max_length=32)] = None) -> HTMLResponse:
    return await _desk(request, principal, call_id, q=q, notice=notice)


async def _act(request: Request, principal: Principal, call_id: int | None, csrf_token: str,
               work: Any) -> Response:
    """Run a desk action posted from the page: back to the desk with its notice, or the refusal shown."""
    settings = request.app.state.settings
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _desk(request, principal, call_id, error=STALE_FORM, status_code=403)
    try:
        notice = await work()
    except DomainError as exc:
        message, status = _message(exc)
        return await _desk(request, principal, call_id, error=message, status_code=status)
    if isinstance(notice, Response):
        return notice
    return _back(call_id, notice)


@router.post("/desk/identify", response_class=HTMLResponse)
async def identify(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                   settings: SettingsDep, call_id: Annotated[int, Form()], csrf_token: Csrf = "",
                   id_number: Annotated[str, Form(max_length=32)] = "", name: Annotated[str, Form(max_length=64)] = "",
                   birth_date: Annotated[str, Form(max_length=10)] = "",
                   phone: Annotated[str, Form(max_length=24)] = "") -> Response:
    async def work() -> str:
        try:
            born = date.fromisoformat(birth_date) if birth_date.strip() else None
            data = IdentifyIn(id_number=_optional(id_number), name=_optional(name), birth_date=born,
                              phone=_optional(phone))
        except ValueError as exc:
            raise ValidationFailed("请只填写一种方式：身份证号；姓名和出生日期；或手机号。", field="identify",
                                   rule="hotline.desk.identify_one_way") from exc
        async with database.transaction() as session:
            found = await desk.identify(session, database, clock, settings, principal, call_id, data)
        return "identified" if found.caller else "several" if found.matches else "nobody"

    return await _act(request, principal, call_id, csrf_token, work)


@router.post("/desk/book", response_class=HTMLResponse)
async def book(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep, settings: SettingsDep,
               call_id: Annotated[int, Form()], session_id: Annotated[int, Form()], csrf_token: Csrf = "",
               request_key: Annotated[str, Form(max_length=64)] = "") -> Response:
    async def work() -> str:
        idem = booking.context_for(principal.subject, request_key, "POST", request.url.path,
                                   f"{call_id}:{session_id}".encode())
        await desk.book(database, clock, settings, booking.runtime_of(request.app.state), principal, call_id,
                        session_id, idem)
        return "booked"

    return await _act(request, principal, call_id, csrf_token, work)


@router.post("/desk/cancel", response_class=HTMLResponse)
async def cancel(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep, settings: SettingsDep,
                 call_id: Annotated[int, Form()], booking_id: Annotated[int, Form()],
                 csrf_token: Csrf = "") -> Response:
    async def work() -> str:
        async with database.transaction() as session:
            await desk.cancel(session, database, clock, settings, booking.runtime_of(request.app.state), principal,
                              call_id, booking_id)
        return "cancelled"

    return await _act(request, principal, call_id, csrf_token, work)


@router.post("/desk/reschedule", response_class=HTMLResponse)
async def reschedule(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                     settings: SettingsDep, call_id: Annotated[int, Form()], booking_id: Annotated[int, Form()],
                     session_id: Annotated[int, Form()], csrf_token: Csrf = "",
                     request_key: Annotated[str, Form(max_length=64)] = "") -> Response:
    async def work() -> str:
        idem = booking.context_for(principal.subject, request_key, "POST", request.url.path,
                                   f"{call_id}:{booking_id}:{session_id}".encode())
        async with database.transaction() as session:
            await desk.reschedule(session, database, clock, settings, booking.runtime_of(request.app.state),
                                  principal, call_id, booking_id, session_id, idem)
        return "rescheduled"

    return await _act(request, principal, call_id, csrf_token, work)


@router.post("/desk/callbacks/{callback_id}/dial", response_class=HTMLResponse)
async def dial(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep, settings: SettingsDep,
               callback_id: RowId, csrf_token: Csrf = "") -> Response:
    async def work() -> Response:
        async with database.transaction() as session:
            dialled = await desk_callbacks.dial(session, clock, settings, principal, callback_id)
        return await _desk(request, principal, None, dialled=dialled)

    return await _act(request, principal, None, csrf_token, work)


@router.post("/desk/callbacks/{callback_id}/result", response_class=HTMLResponse)
async def callback_result(request: Request, principal: Agent, database: DatabaseDep, clock: ClockDep,
                          callback_id: RowId, outcome: Annotated[str, Form(max_length=16)],
                          csrf_token: Csrf = "", note: Annotated[str, Form(max_length=1000)] = "",
                          request_key: Annotated[str, Form(max_length=64)] = "") -> Response:
    async def work() -> str:
        if outcome not in ("reached", "not_reached"):
            raise ValidationFailed("结果只能是已联系上或未联系上", field="outcome", value=outcome,
                                   rule="hotline.callback.outcome")
        data = CallbackResultIn(request_key=request_key or secrets.token_urlsafe(12),
                                               outcome=outcome, note=_optional(note))
        async with database.transaction() as session:
            await desk_callbacks.report(session, clock, principal, callback_id, data)
        return outcome

    return await _act(request, principal, None, csrf_token, work)


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor_page(request: Request, principal: Supervisor, database: DatabaseDep,
                          clock: ClockDep) -> HTMLResponse:
    async with database.transaction() as session:
        view = await desk_supervisor.supervisor_view(session, clock, principal)
    return page(request, "hotline_supervisor.html", view=view)
