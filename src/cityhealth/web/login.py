"""Operator login and logout for the browser: password and TOTP code through security's staff login."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.security import staff
from cityhealth.security.credentials import MAX_PASSWORD_CHARS
from cityhealth.security.endpoints import source_address
from cityhealth.security.principals import Principal
from cityhealth.web.session import (
    CSRF_FIELD,
    SignInForm,
    end_session,
    require_login,
    safe_next,
    sign_in,
)
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)

LoggedIn = Annotated[Principal, Depends(require_login())]

# One answer for an unknown user, a wrong password or code, a locked or inactive account: none can be probed.
REFUSED = "用户名、密码或动态验证码不正确，或账户已被暂时锁定。"
MESSAGES = {
    "totp_required": "请输入身份验证器上的 6 位动态验证码。",
    "totp_not_enrolled": "该角色必须使用动态验证码，但此账户尚未绑定身份验证器，请联系管理员。",
}
STALE_FORM = "表单已过期或来源无效，请重新提交。"


def _form(request: Request, *, next_url: str, username: str = "", error: str | None = None,
          status_code: int = 200) -> HTMLResponse:
    return page(request, "login.html", status_code=status_code, next_url=next_url, username=username, error=error)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: Annotated[str | None, Query(max_length=2048)] = None) -> HTMLResponse:
    return _form(request, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)] = "",
    totp: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "",
) -> Response:
    next_url = safe_next(next)

    def again(error: str, status_code: int) -> Response:
        return _form(request, next_url=next_url, username=username, error=error, status_code=status_code)

    async def attempt(session: AsyncSession) -> Principal | str:
        result = await staff.login(session, clock, settings, username=username, password=password,
                                   totp=totp.strip() or None, source_address=source_address(request))
        return result.principal or MESSAGES.get(result.failure or "", REFUSED)

    return await sign_in(request, settings, clock, database, SignInForm(again, STALE_FORM), submitted=csrf_token,
                         next_url=next_url, account=lambda: f"staff:{username}", login=attempt)


@router.post("/logout")
async def logout(
    request: Request, principal: LoggedIn, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    signed_out = await end_session(request, settings, clock, database, principal, csrf_token, "/")
    return signed_out or page(request, "message.html", status_code=403, title="无法退出", message=STALE_FORM)
