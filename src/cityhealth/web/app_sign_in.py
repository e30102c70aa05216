"""The resident app's sign-in and registration: the phone and a one-time SMS code.

Steps (each a form post with its CSRF token; the challenge's token travels in a hidden field, never in an
address): the phone → a code is sent (registry/phone_accounts.py, security/sms.py) → the code → signed in,
or, on a phone that backs several accounts, the account to open. Registration: the phone → the code with
the ID number, name and a password → the real-name check and the account (at most 3 on one phone).

Every step counts towards the authentication limiter per source address, and a code request also per
phone, as the password sign-in does (security/endpoints.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, TooManyRequests
from cityhealth.registry import service as registry_service
from cityhealth.registry.service import PhoneSignIn
from cityhealth.security import sms
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.credentials import MAX_PASSWORD_CHARS
from cityhealth.security.endpoints import limit_auth_attempts, source_address
from cityhealth.security.principals import PrincipalKind
from cityhealth.security.sms import CodePurpose
from cityhealth.web.session import CSRF_FIELD, csrf_ok, signed_in
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=128)]
Challenge = Annotated[str, Form(max_length=64)]  # the challenge's token, in a hidden field
Code = Annotated[str, Form(max_length=16)]

HOME = "/app/"
ACTOR = "resident-app:phone"  # who an anonymous step is audited as
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
TOO_MANY = "操作过于频繁，请稍后再试。"
REFUSALS = {
    "wrong": "验证码不正确，请检查后重新输入。",
    "expired": "验证码已过期，请重新获取。",
    "used": "验证码已使用，请重新获取。",
    "unknown": "验证码已失效，请重新获取。",
    "too_many": "验证码输入错误次数过多，已失效，请重新获取。",
    "no_account": "该手机号尚未绑定实名账户，请先注册。",
    "real_name_mismatch": "身份证号码与姓名不匹配，请核对后重试。",
    "phone_account_limit": "该手机号已绑定 3 个账户，不能再注册新的账户。",
    "account_exists": "该居民已有账户，请直接登录。",
    "sms_resend_too_soon": "验证码发送过于频繁，请一分钟后再试。",
    "phone.mobile": "请填写有效的 11 位手机号码。",
    "password.min_length": "密码至少 8 位。",
    "password.max_length": "密码过长。",
    "id_number": "请填写有效的 18 位居民身份证号码。",
}
REFUSED = "暂时无法办理，请稍后再试。"
# A refusal after which the challenge is spent: the resident starts again from the phone.
START_AGAIN = {"expired", "used", "unknown", "too_many"}


def refusal_text(key: str) -> str:
    return REFUSALS.get(key, REFUSED)


def _status(refusal: str) -> int:
    return {"too_many": 429, "real_name_mismatch": 422}.get(refusal, 401)


def _error_key(exc: DomainError) -> str:
    for key in (exc.code, exc.rule, exc.field):
        if key in REFUSALS:
            return str(key)
    return exc.code


def _phone_form(request: Request, purpose: CodePurpose, *, error: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    return page(request, "app_phone.html", status_code=status_code, purpose=purpose.value, error=error)


def _code_form(request: Request, purpose: CodePurpose, token: str, *, error: str | None = None,
               status_code: int = 200, masked_phone: str | None = None) -> HTMLResponse:
    return page(request, "app_code.html", status_code=status_code, purpose=purpose.value, token=token,
                error=error, masked_phone=masked_phone)


async def _limited(request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
                   account: str | None) -> bool:
    try:
        await limit_auth_attempts(request, settings, clock, database, account=account)
    except TooManyRequests:
        return True
    return False


async def _send(request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
                purpose: CodePurpose, phone: str, submitted: str) -> Response:
    if not csrf_ok(request, settings, submitted, None):
        return _phone_form(request, purpose, error=STALE_FORM, status_code=403)
    phone = phone.strip()
    if await _limited(request, settings, clock, database, f"sms:{sms.phone_hash(settings, phone)}"):
        return _phone_form(request, purpose, error=TOO_MANY, status_code=429)
    try:
        async with database.transaction() as session:
            token = await registry_service.request_code(session, clock, settings, phone=phone, purpose=purpose)
    except DomainError as exc:  # a malformed phone, a code asked again too soon: rolled back, audited
        await record_now(database, clock, None, Action.CREATE, "sms_code", outcome=Outcome.DENIED,
                         detail=exc.code, actor=ACTOR, actor_kind=PrincipalKind.RESIDENT.value)
        return _phone_form(request, purpose, error=refusal_text(_error_key(exc)), status_code=exc.status)
    return _code_form(request, purpose, token, masked_phone=registry_service.mask_phone(phone))


def _answer(request: Request, settings: SettingsDep, clock: ClockDep, purpose: CodePurpose, token: str,
            result: PhoneSignIn) -> Response:
    if result.principal is not None:
        return signed_in(request, settings, clock, result.principal, HOME)
    if result.choices:
        return page(request, "app_choose.html", token=token, choices=result.choices)
    refusal = result.refusal or "unknown"
    if refusal in START_AGAIN:
        return _phone_form(request, purpose, error=refusal_text(refusal), status_code=_status(refusal))
    return _code_form(request, purpose, token, error=refusal_text(refusal), status_code=_status(refusal))


async def _code_step(request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
                     purpose: CodePurpose, token: str, submitted: str,
                     complete: Callable[[], Awaitable[PhoneSignIn | Response]]) -> Response:
    """The code step that sign-in and registration share: the form's CSRF token and the limiter first, then
    `complete` (the code's check and what the flow does with it), answered by `_answer` unless it answered."""
    if not csrf_ok(request, settings, submitted, None):
        return _code_form(request, purpose, token, error=STALE_FORM, status_code=403)
    if await _limited(request, settings, clock, database, None):
        return _code_form(request, purpose, token, error=TOO_MANY, status_code=429)
    result = await complete()
    return result if isinstance(result, Response) else _answer(request, settings, clock, purpose, token, result)


def _phone_step(path: str, purpose: CodePurpose) -> None:
    """The first step that sign-in and registration share, at `path`: the phone form, and its post sending the
    code (`_send`)."""

    @router.get(path, response_class=HTMLResponse, name=f"app_{purpose.value}_form")
    async def phone_form(request: Request) -> HTMLResponse:
        return _phone_form(request, purpose)

    @router.post(path, response_class=HTMLResponse, name=f"app_{purpose.value}_send_code")
    async def send_code(
        request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
        phone: Annotated[str, Form(max_length=32)] = "",
        csrf_token: Csrf = "",
    ) -> Response:
        return await _send(request, settings, clock, database, purpose, phone, csrf_token)


_phone_step("/login", CodePurpose.SIGN_IN)


@router.post("/login/code", response_class=HTMLResponse)
async def sign_in_with_code(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    token: Challenge = "",
    code: Code = "",
    csrf_token: Csrf = "",
) -> Response:
    async def complete() -> PhoneSignIn:
        # Committed even when refused: a wrong code counts towards the challenge's attempts.
        async with database.transaction() as session:
            return await registry_service.sign_in_with_code(session, clock, settings, token=token, code=code,
                                                            source_address=source_address(request))

    return await _code_step(request, settings, clock, database, CodePurpose.SIGN_IN, token, csrf_token, complete)


@router.post("/login/choose", response_class=HTMLResponse)
async def choose_account(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    account_id: Annotated[RowId, Form()],
    token: Challenge = "",
    csrf_token: Csrf = "",
) -> Response:
    if not csrf_ok(request, settings, csrf_token, None):
        return _phone_form(request, CodePurpose.SIGN_IN, error=STALE_FORM, status_code=403)
    async with database.transaction() as session:
        result = await registry_service.choose_account(session, clock, token=token, account_id=account_id,
                                                       source_address=source_address(request))
    return _answer(request, settings, clock, CodePurpose.SIGN_IN, token, result)


_phone_step("/register", CodePurpose.REGISTER)


@router.post("/register/complete", response_class=HTMLResponse)
async def register(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    token: Challenge = "",
    code: Code = "",
    id_number: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)] = "",
    csrf_token: Csrf = "",
) -> Response:
    async def complete() -> PhoneSignIn | Response:
        async with database.transaction() as session:  # the code's check, committed on its own
            refusal = await registry_service.check_registration_code(session, clock, settings, token=token,
                                                                     code=code)
        if refusal is not None:
            return PhoneSignIn(refusal=refusal.value)
        try:
            async with database.transaction() as session:
                return await registry_service.register_with_code(
                    session, clock, settings, token=token, id_number=id_number, name=name, password=password,
                    source_address=source_address(request))
        except DomainError as exc:  # a 4th account on the phone, an account already, a weak password: rolled back
            await record_now(database, clock, None, Action.CREATE, "resident_account", outcome=Outcome.FAILURE,
                             detail=exc.code, actor=ACTOR, actor_kind=PrincipalKind.RESIDENT.value)
            return _code_form(request, CodePurpose.REGISTER, token, error=refusal_text(_error_key(exc)),
                              status_code=exc.status)

    return await _code_step(request, settings, clock, database, CodePurpose.REGISTER, token, csrf_token, complete)
