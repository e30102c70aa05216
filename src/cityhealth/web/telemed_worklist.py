"""The remote diagnosis reading pages: a reading centre's worklist (its queue, the case, claim, draft and sign
the report) and a requester's cases and the reports that came back.

Every step goes through the room's use cases, as the API's do: the claim is the one conditional update of
telemed/reading.py (a claim lost to another doctor shows who cannot have it, not an error page), and the
object rule is the case's (a reading centre sees a case only while it is routed to it, a requester only its
organization's; any other case is not found). Every case view is audited by the use cases it calls. Forms
post with a CSRF token and a request key, and come back to the case (post, redirect, get) with a notice.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityhealth.clock import BUSINESS_TZ
from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, NotFound, ValidationFailed
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import cases, files, reading, worklists
from cityhealth.telemed.schemas import ReportIn, StepIn
from cityhealth.telemed.workflow import OPEN_STATUSES
from cityhealth.web.session import CSRF_FIELD, csrf_ok, require_login
from cityhealth.web.templating import page

router = APIRouter(prefix="/telemed", include_in_schema=False)
Doctor = Annotated[Principal, Depends(require_login(Scope.TELEMED_READ))]
Requester = Annotated[Principal, Depends(require_login(Scope.TELEMED_REQUEST))]
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=128)]
Key = Annotated[str, Form(max_length=64)]
Text = Annotated[str, Form(max_length=8000)]
WORKLIST = "/telemed/worklist"
REQUESTS = "/telemed/requests"
RESOURCE = "telemed_case"
STEPS = ("accept", "claim", "release", "draft", "sign")
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
CASE_HELD = "该病例已被其他医生认领，您无法认领或修改它。"
NOT_FOUND = "没有这个病例，或它不在您可以查看的范围内。"
NOTICES = {
    "accept": "已接收入本中心队列。",
    "claim": "已认领，可以书写报告。",
    "release": "已放回队列。",
    "draft": "报告草稿已保存。",
    "sign": "报告已签发，已返回申请方。",
}
LABELS = {
    "network": {"teleconsultation": "远程会诊", "ecg": "远程心电", "lab": "远程检验", "imaging": "远程影像",
                "pathology": "远程病理"},
    "priority": {"routine": "常规", "urgent": "加急", "asap": "尽快", "stat": "危急"},
    "status": {"requested": "待接收", "received": "已收到", "accepted": "待认领", "in-progress": "判读中",
               "completed": "已完成", "rejected": "已退回", "cancelled": "已撤回"},
    "event": {"submitted": "提交", "routed": "分派", "received": "收到", "accepted": "接收", "rejected": "退回",
              "unroutable": "无中心可接", "claimed": "认领", "released": "放回", "drafted": "草拟报告",
              "signed": "签发报告", "cancelled": "撤回"},
}


def _key() -> str:
    return secrets.token_urlsafe(18)


def _local(value: Any) -> str:
    return "" if value is None else value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


async def _denied(request: Request, principal: Principal, error: DomainError) -> None:
    """A refusal on a page, audited in a transaction of its own (the page's had nothing to keep)."""
    state = request.app.state
    denied = error.status in (403, 404)
    await record_now(state.database, state.clock, principal, Action.DENIED if denied else Action.UPDATE, RESOURCE,
                     outcome=Outcome.DENIED if denied else Outcome.FAILURE, detail=error.code)


def _not_found(request: Request) -> HTMLResponse:
    return page(request, "message.html", status_code=404, title="未找到病例", message=NOT_FOUND)


async def _queue(request: Request, principal: Principal, *, base: str) -> HTMLResponse:
    state = request.app.state
    async with state.database.transaction() as session:
        if base == WORKLIST:
            found = await worklists.worklist(session, state.clock, principal, statuses=OPEN_STATUSES, limit=200)
        else:
            found = await worklists.requester_cases(session, state.clock, principal, status=None, before_id=None,
                                                    limit=200)
    return page(request, "telemed_worklist.html", cases=found, base=base, labels=LABELS, local=_local,
                overdue=sum(1 for case in found if case.overdue))


async def _case(request: Request, principal: Principal, case_id: int, *, base: str, notice: str | None = None,
                error: str | None = None, status_code: int = 200) -> HTMLResponse:
    state = request.app.state
    view: cases.View = "centre" if base == WORKLIST else "requester"
    try:
        async with state.database.transaction() as session:
            shown = await files.case_page(session, state.clock, field_cipher(state.settings), principal, case_id,
                                          view)
    except NotFound as missing:
        await _denied(request, principal, missing)
        return _not_found(request)
    return page(request, "telemed_case.html", status_code=status_code, shown=shown, case=shown.detail, base=base,
                labels=LABELS, local=_local, notice=NOTICES.get(notice or ""), error=error, request_key=_key(),
                is_centre=view == "centre", mine=shown.detail.holder == principal.subject)


@router.get("/worklist", response_class=HTMLResponse)
async def worklist_page(request: Request, principal: Doctor) -> HTMLResponse:
    return await _queue(request, principal, base=WORKLIST)


@router.get("/worklist/cases/{case_id}", response_class=HTMLResponse)
async def centre_case(request: Request, principal: Doctor, case_id: RowId,
                      notice: Annotated[str | None, Query(max_length=16)] = None) -> HTMLResponse:
    return await _case(request, principal, case_id, base=WORKLIST, notice=notice)


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(request: Request, principal: Requester) -> HTMLResponse:
    return await _queue(request, principal, base=REQUESTS)


@router.get("/requests/cases/{case_id}", response_class=HTMLResponse)
async def requester_case(request: Request, principal: Requester, case_id: RowId) -> HTMLResponse:
    return await _case(request, principal, case_id, base=REQUESTS)


async def _svg(request: Request, principal: Principal, case_id: int, tracing_id: int) -> Response:
    state = request.app.state
    try:
        async with state.database.transaction() as session:  # ended before the drawing: see ecg.Drawing
            drawing = await files.ecg_drawing_of_case(session, state.clock, principal, case_id, tracing_id)
    except NotFound as missing:
        await _denied(request, principal, missing)
        return Response(status_code=404)
    svg = await asyncio.to_thread(drawing.svg)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/worklist/cases/{case_id}/ecg/{tracing_id}/svg")
async def centre_ecg(request: Request, principal: Doctor, case_id: RowId, tracing_id: RowId) -> Response:
    return await _svg(request, principal, case_id, tracing_id)


@router.get("/requests/cases/{case_id}/ecg/{tracing_id}/svg")
async def requester_ecg(request: Request, principal: Requester, case_id: RowId, tracing_id: RowId) -> Response:
    return await _svg(request, principal, case_id, tracing_id)


def _invalid(error: ValidationError) -> ValidationFailed:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    labels = {"findings": "所见", "conclusion": "结论"}
    return ValidationFailed(f"{labels.get(where, where)}：请填写（最多 8000 字）", field=where, rule="form.field")


async def _take(request: Request, principal: Principal, case_id: int, step: str, request_key: str, findings: str,
                conclusion: str) -> None:
    state = request.app.state
    try:
        if step in ("draft", "sign"):
            report = ReportIn.model_validate({"request_key": request_key, "findings": findings,
                                              "conclusion": conclusion})
        else:
            plain = StepIn.model_validate({"request_key": request_key})
    except ValidationError as invalid:
        raise _invalid(invalid) from invalid
    async with state.database.transaction() as session:
        clock = state.clock
        if step == "accept":
            await cases.accept(session, clock, principal, case_id, plain)
        elif step == "claim":
            await reading.claim(session, clock, principal, case_id, plain)
        elif step == "release":
            await reading.release(session, clock, principal, case_id, plain)
        elif step == "draft":
            await reading.draft(session, clock, principal, case_id, report)
        else:
            await reading.sign(session, clock, principal, case_id, report)


@router.post("/worklist/cases/{case_id}/{step}", response_class=HTMLResponse)
async def centre_step(request: Request, principal: Doctor, settings: SettingsDep, database: DatabaseDep,
                      clock: ClockDep, case_id: RowId, step: str, csrf_token: Csrf = "", request_key: Key = "",
                      findings: Text = "", conclusion: Text = "") -> Response:
    if step not in STEPS:
        raise ValidationFailed(f"no step {step!r}", field="step", value=step[:32], rule="form.step")
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _case(request, principal, case_id, base=WORKLIST, error=STALE_FORM, status_code=403)
    try:
        await _take(request, principal, case_id, step, request_key or _key(), findings, conclusion)
    except DomainError as error:
        await _denied(request, principal, error)
        if error.status == 404:
            return _not_found(request)
        message = CASE_HELD if error.code == "case_held" else f"{error.message}（{error.code}）"
        return await _case(request, principal, case_id, base=WORKLIST, error=message, status_code=error.status)
    return RedirectResponse(f"{WORKLIST}/cases/{case_id}?notice={step}", status_code=303)
