"""The resident booking pages: choose a hospital, department and day; a slot's page (the SMART feed's deep
link), public until the resident books; the hold, behind a resident sign-in (web/booking_account.py).

A slot's page posts its "book" form to its own address, so a sign-in that interrupts it returns there.
"""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityhealth.booking.service import Refused, runtime_of
from cityhealth.clock import business_date
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError
from cityhealth.security.audit import Action
from cityhealth.security.principals import Principal, Scope
from cityhealth.web import booking_account
from cityhealth.web import booking_sources as sources
from cityhealth.web.session import CSRF_FIELD, csrf_ok, optional_resident, require_resident
from cityhealth.web.templating import page

router = APIRouter(prefix="/booking", include_in_schema=False)

Visitor = Annotated[Principal | None, Depends(optional_resident)]
Booker = Annotated[Principal, Depends(require_resident(Scope.BOOKING_WRITE))]
DAYS_SHOWN = 14  # the days a resident can pick: today and the 13 after (the feed publishes as far)
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"


def _day(value: str | None, today: date) -> tuple[date, str | None]:
    """The chosen day (tomorrow by default), or tomorrow and a message for one outside the pickable days."""
    tomorrow = today + timedelta(days=1)
    if not value:
        return tomorrow, None
    try:
        chosen = date.fromisoformat(value)
    except ValueError:
        return tomorrow, f"日期 {value} 的格式不对，请按 年-月-日 选择。"
    if not today <= chosen < today + timedelta(days=DAYS_SHOWN):
        return tomorrow, f"只能查看今天起 {DAYS_SHOWN} 天内的号源。"
    return chosen, None


@router.get("/", response_class=HTMLResponse)
async def choose(request: Request, visitor: Visitor, database: DatabaseDep, clock: ClockDep,
                 organization_id: RowId | None = None, department_id: RowId | None = None,
                 day: Annotated[str | None, Query(alias="date", max_length=16)] = None) -> HTMLResponse:
    today = business_date(clock.now())
    chosen, problem = _day(day, today)
    found = None
    if organization_id is not None and problem is None:
        # First, on the search's own connection: on SQLite the page's transaction below holds the lock.
        found = await sources.day_sessions(database, clock, runtime_of(request.app.state),
                                           organization_id=organization_id, day=chosen)
    async with database.transaction() as session:
        hospitals = await sources.hospitals(session, clock)
        hospital = next((item for item in hospitals if item.id == organization_id), None)
        departments = await sources.departments(session, hospital.id) if hospital else []
        if department_id is not None and all(item.id != department_id for item in departments):
            department_id = None  # a department of another hospital (the hospital was changed): all of this one's
        slots = None
        if hospital is not None and found is not None:
            slots = await sources.day_slots(session, clock, found, department_id)
            sources.audit_view(session, clock, visitor, Action.SEARCH)
    return page(request, "booking_index.html", hospitals=hospitals, hospital=hospital, departments=departments,
                department_id=department_id, day=chosen, first_day=today,
                last_day=today + timedelta(days=DAYS_SHOWN - 1), slots=slots, problem=problem)


def _slot_page(request: Request, slot: sources.SlotView, visitor: Principal | None, *, error: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    return page(request, "booking_slot.html", status_code=status_code, slot=slot, visitor=visitor, error=error,
                request_key=secrets.token_urlsafe(18))


@router.get("/slots/{slot_id}", response_class=HTMLResponse)
async def slot_page(request: Request, slot_id: RowId, visitor: Visitor, session: SessionDep,
                    clock: ClockDep) -> HTMLResponse:
    slot = await sources.slot(session, clock, slot_id)
    sources.audit_view(session, clock, visitor, Action.READ, slot_id)
    return _slot_page(request, slot, visitor)


@router.post("/slots/{slot_id}", response_class=HTMLResponse)
async def book_slot(
    request: Request, slot_id: RowId, principal: Booker, settings: SettingsDep, clock: ClockDep,
    database: DatabaseDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    request_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        async with database.transaction() as session:
            slot = await sources.slot(session, clock, slot_id)
        return _slot_page(request, slot, principal, error=STALE_FORM, status_code=403)
    try:
        held = await sources.hold(request.app, principal, slot_id, request_key, request.url.path)
    except (DomainError, Refused) as exc:
        error = await sources.audit_refusal(database, clock, principal, exc)
        async with database.transaction() as session:
            slot = await sources.slot(session, clock, slot_id)
        return _slot_page(request, slot, principal, error=sources.refusal_text(error), status_code=error.status)
    return RedirectResponse(f"/booking/mine?held={held.id}", status_code=303)


router.include_router(booking_account.router)
