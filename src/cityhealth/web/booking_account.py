"""A resident's side of the booking pages: sign-in (ID number and password, as /api/auth/residents/login),
sign-out, and "my bookings" with its confirm and cancel forms.

The sign-in counts towards the same rate limit and lockout as the API's, and the session it opens is a
resident session like the API's (the cookie carries its access token: web/session.py).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking.service import Refused
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, ValidationFailed
from cityhealth.registry import service as registry_service
from cityhealth.security import residents
from cityhealth.security.credentials import MAX_PASSWORD_CHARS
from cityhealth.security.crypto import Purpose
from cityhealth.security.endpoints import source_address
from cityhealth.security.principals import Principal, Scope
from cityhealth.web import booking_sources as sources
from cityhealth.web.session import (
    CSRF_FIELD,
    SignInForm,
    SignInRefused,
    csrf_ok,
    end_session,
    require_resident,
    safe_next,
    sign_in,
)
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)

SignedIn = Annotated[Principal, Depends(require_resident())]
Reader = Annotated[Principal, Depends(require_resident(Scope.BOOKING_READ))]
Writer = Annotated[Principal, Depends(require_resident(Scope.BOOKING_WRITE))]
AFTER_SIGN_IN = "/booking/mine"
MINE = "/booking/mine"

# One answer for an unknown ID number, a wrong password, a locked account: none can be probed.
REFUSED = "身份证号码或密码不正确，或账户已被暂时锁定。"
BAD_ID_NUMBER = "请填写有效的 18 位居民身份证号码。"
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"


def _form(request: Request, *, next_url: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    # The ID number typed is never sent back: a page must not carry a whole ID number.
    return page(request, "booking_login.html", status_code=status_code, next_url=next_url, error=error)


@router.get("/login", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: Annotated[str | None, Query(max_length=2048)] = None) -> HTMLResponse:
    return _form(request, next_url=safe_next(next, AFTER_SIGN_IN))


@router.post("/login", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    id_number: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    next_url = safe_next(next, AFTER_SIGN_IN)
    id_hash = ""

    def again(error: str, status_code: int) -> Response:
        return _form(request, next_url=next_url, error=error, status_code=status_code)

    def account() -> str:
        nonlocal id_hash
        try:
            number = registry_service.parse_id_number(id_number.strip(), clock).number
        except ValidationFailed:
            raise SignInRefused(BAD_ID_NUMBER, 422) from None
        id_hash = sources.cipher_of(settings).lookup_hash(Purpose.RESIDENT_ID_NUMBER, number)
        return f"resident:{id_hash}"

    async def attempt(session: AsyncSession) -> Principal | str:
        resident = await registry_service.resident_for_account(session, id_hash)
        found = await residents.account_for_login(session, None if resident is None else resident.id)
        result = await residents.login(session, clock, settings, account=found, password=password,
                                       source_address=source_address(request))
        return result.principal or REFUSED

    return await sign_in(request, settings, clock, database, SignInForm(again, STALE_FORM), submitted=csrf_token,
                         next_url=next_url, account=account, login=attempt)


@router.post("/logout")
async def sign_out(
    request: Request, principal: SignedIn, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    signed_out = await end_session(request, settings, clock, database, principal, csrf_token, "/booking/")
    return signed_out or page(request, "message.html", status_code=403, title="无法退出", message=STALE_FORM)


def _mine(request: Request, bookings: list[sources.MyBooking], *, notice: str | None = None,
          error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return page(request, "booking_mine.html", status_code=status_code, bookings=bookings, notice=notice,
                error=error, request_key=secrets.token_urlsafe(18))


def _notice(held: int | None, booked: int | None, cancelled: int | None) -> str | None:
    if held is not None:
        return "号源已为您保留，请在保留时间内确认预约，逾期号源将自动释放。"
    if booked is not None:
        return "预约成功。请按预计就诊时间前往医院，凭身份证取号。"
    if cancelled is not None:
        return "预约已取消，号源已释放给其他居民。"
    return None


@router.get("/mine", response_class=HTMLResponse)
async def my_bookings(request: Request, principal: Reader, session: SessionDep, clock: ClockDep,
                      held: RowId | None = None, booked: RowId | None = None,
                      cancelled: RowId | None = None) -> HTMLResponse:
    bookings = await sources.my_bookings(session, clock, principal)
    return _mine(request, bookings, notice=_notice(held, booked, cancelled))


@router.post("/mine", response_class=HTMLResponse)
async def change_booking(
    request: Request, principal: Writer, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    booking_id: Annotated[RowId, Form()],
    action: Annotated[Literal["confirm", "cancel"], Form()],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    request_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    error: DomainError | None = None
    stale = not csrf_ok(request, settings, csrf_token, principal.session_id)
    if not stale:
        try:
            async with database.transaction() as tx:
                if action == "confirm":
                    result = await sources.confirm(tx, request.app, principal, booking_id, request_key, MINE)
                else:
                    await sources.cancel(tx, request.app, principal, booking_id)
        except (DomainError, Refused) as exc:
            error = await sources.audit_refusal(database, clock, principal, exc)
        else:
            if action == "confirm":
                await sources.confirmed(request.app, principal, result)
                return RedirectResponse(f"{MINE}?booked={booking_id}", status_code=303)
            return RedirectResponse(f"{MINE}?cancelled={booking_id}", status_code=303)
    async with database.transaction() as session:
        bookings = await sources.my_bookings(session, clock, principal)
    if error is None:
        return _mine(request, bookings, error=STALE_FORM, status_code=403)
    return _mine(request, bookings, error=sources.refusal_text(error), status_code=error.status)
