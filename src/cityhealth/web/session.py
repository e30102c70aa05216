"""The browser's login: an access token in an HttpOnly cookie, renewed while its session lives; CSRF tokens.

The cookie holds the platform's own access token (the one /api/auth/login or /api/auth/residents/login
issues), so a browser session is a staff or resident session like any other: logout, deactivation and the
idle timeout end it, and every page view checks it is live. The token lives minutes; a page view within the
idle timeout re-issues it (a staff member's from the database: roles changed since login apply at once),
so the user stays in while working. Operators' pages take staff logins, the booking pages residents'.

Form posts carry a CSRF token besides SameSite=Strict: an HMAC, under a key derived from the token signing
key, of a random per-browser nonce (its own cookie) and the staff session id once logged in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Environment, Settings
from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.db.engine import Database
from cityhealth.errors import Forbidden, TooManyRequests, Unauthenticated
from cityhealth.security import staff
from cityhealth.security.audit import Action, record_now
from cityhealth.security.dependencies import client_state_cache
from cityhealth.security.endpoints import limit_auth_attempts
from cityhealth.security.failures import authentication_failed
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.sessions import ensure_live, logout, subject_id
from cityhealth.security.tokens import decode_access_token, issue_access_token

SESSION_COOKIE = "cityhealth_session"
CSRF_COOKIE = "cityhealth_csrf"
CSRF_FIELD = "csrf_token"
DEFAULT_AFTER_LOGIN = "/dashboard/quality"
STAFF_LOGIN = "/login"
RESIDENT_LOGIN = "/booking/login"
APP_LOGIN = "/app/login"  # the resident app's sign-in (phone and SMS code)
TOO_MANY = "登录尝试过于频繁，请稍后再试。"


class LoginRequired(Exception):
    """The page needs a live login: answered with a redirect to its login page (see pages.install)."""

    def __init__(self, next_url: str, *, forget_session: bool, login_path: str = "/login") -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.forget_session = forget_session  # the cookie's session is over: delete the cookie
        self.login_path = login_path


def secure_cookies(settings: Settings) -> bool:
    # Plain-HTTP development and test servers must still receive the cookie; production is HTTPS only.
    return settings.env is Environment.PRODUCTION


def set_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, secure=secure_cookies(settings), samesite="strict", path="/")


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(name, httponly=True, secure=secure_cookies(settings), samesite="strict", path="/")


def safe_next(value: str | None, default: str = DEFAULT_AFTER_LOGIN) -> str:
    """A local path to return to after login; anything else (another host, a scheme) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return default
    return value


def login_redirect(error: LoginRequired, settings: Settings) -> RedirectResponse:
    response = RedirectResponse(f"{error.login_path}?next={quote(error.next_url, safe='/')}", status_code=303)
    if error.forget_session:
        clear_cookie(response, settings, SESSION_COOKIE)
    return response


# --- CSRF ------------------------------------------------------------------------------------------------


def _csrf_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret("token_signing_key"), b"cityhealth web csrf", hashlib.sha256).digest()


def csrf_nonce(request: Request) -> str:
    """This browser's CSRF nonce: its cookie's, or a new one that the page response will set."""
    nonce = getattr(request.state, "csrf_nonce", None) or request.cookies.get(CSRF_COOKIE)
    if not nonce or len(nonce) > 128:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_nonce_is_new = True
    request.state.csrf_nonce = nonce
    return str(nonce)


def csrf_token(settings: Settings, nonce: str, session_id: str | None) -> str:
    message = f"{nonce}|{session_id or ''}".encode()
    return hmac.new(_csrf_key(settings), message, hashlib.sha256).hexdigest()


def form_token(request: Request, settings: Settings) -> str:
    """The CSRF token a form on this page carries."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return csrf_token(settings, csrf_nonce(request), principal.session_id if principal else None)


def csrf_ok(request: Request, settings: Settings, submitted: str | None, session_id: str | None) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not submitted:
        return False
    return hmac.compare_digest(csrf_token(settings, nonce, session_id), submitted)


def new_csrf_nonce(request: Request) -> None:
    """Start a fresh nonce (after login), set on the response by the page renderer."""
    request.state.csrf_nonce = secrets.token_urlsafe(24)
    request.state.csrf_nonce_is_new = True


def apply_cookies(request: Request, response: Response, settings: Settings) -> None:
    """Set the cookies this request decided on: a new CSRF nonce, a re-issued session token."""
    if getattr(request.state, "csrf_nonce_is_new", False):
        set_cookie(response, settings, CSRF_COOKIE, request.state.csrf_nonce)
    renewed = getattr(request.state, "renewed_session_token", None)
    if renewed:
        set_cookie(response, settings, SESSION_COOKIE, renewed)
    elif getattr(request.state, "forget_session", False):  # a public page found the cookie's session over
        clear_cookie(response, settings, SESSION_COOKIE)


# --- the login dependencies ------------------------------------------------------------------------------


def session_token(principal: Principal, settings: Settings, clock: Clock) -> str:
    """The cookie's value: an access token for the staff or resident session."""
    return issue_access_token(principal, key=settings.secret("token_signing_key"), now=clock.now(),
                              ttl_s=settings.access_token_ttl_s)


def signed_in(request: Request, settings: Settings, clock: Clock, principal: Principal,
              next_url: str) -> RedirectResponse:
    """The answer to a sign-in that opened `principal`'s session (staff or resident): on to `next_url`, the
    session's cookie set, and a fresh CSRF nonce (the sign-in form's is not reused inside the session)."""
    response = RedirectResponse(next_url, status_code=303)
    set_cookie(response, settings, SESSION_COOKIE, session_token(principal, settings, clock))
    new_csrf_nonce(request)
    set_cookie(response, settings, CSRF_COOKIE, request.state.csrf_nonce)
    return response


class SignInRefused(Exception):
    """A sign-in answered with its form again: the text to show and the status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class SignInForm:
    """A sign-in page's texts and how it shows its form again with one of them (and a status)."""

    again: Callable[[str, int], Response]
    stale: str  # the form's CSRF token does not match: nothing is attempted
    too_many: str = TOO_MANY


async def sign_in(request: Request, settings: Settings, clock: Clock, database: Database, form: SignInForm, *,
                  submitted: str, next_url: str, account: Callable[[], str],
                  login: Callable[[AsyncSession], Awaitable[Principal | str]]) -> Response:
    """The staff and the resident sign-in: the CSRF check (a cross-site or replayed form does not even count
    towards a lockout), the rate limit on `account()` (which may refuse with `SignInRefused`), then `login`
    in a transaction of its own, committed even when it refuses (the failure counts towards the lockout):
    the principal signed in, or the refusal's text (401)."""
    try:
        if not csrf_ok(request, settings, submitted, None):
            raise SignInRefused(form.stale, 403)
        try:
            await limit_auth_attempts(request, settings, clock, database, account=account())
        except TooManyRequests:
            raise SignInRefused(form.too_many, 429) from None
        async with database.transaction() as session:
            result = await login(session)
        if isinstance(result, str):
            raise SignInRefused(result, 401)
    except SignInRefused as refused:
        return form.again(refused.message, refused.status_code)
    return signed_in(request, settings, clock, result, next_url)


async def end_session(request: Request, settings: Settings, clock: Clock, database: Database, principal: Principal,
                      submitted: str, to: str) -> RedirectResponse | None:
    """End the session its form posted from (in a transaction of its own) and go on to `to`, its cookie
    cleared; None, and nothing done, when the form's CSRF token does not match the session."""
    if not csrf_ok(request, settings, submitted, principal.session_id):
        return None
    async with database.transaction() as session:
        await logout(session, clock, principal)
    response = RedirectResponse(to, status_code=303)
    clear_cookie(response, settings, SESSION_COOKIE)
    return response


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _cookie_principal(request: Request, settings: Settings, clock: Clock, database: Database,
                            kind: PrincipalKind, login_path: str | None = None) -> Principal:
    """The live session of `kind` behind the cookie, as it stands now; LoginRequired otherwise.

    A live login of the other kind (a resident on an operator's page, or the reverse) is sent to the login
    of this kind and keeps its cookie; a bad or ended cookie is audited and forgotten.
    """
    login_path = login_path or (RESIDENT_LOGIN if kind is PrincipalKind.RESIDENT else STAFF_LOGIN)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired(_here(request), forget_session=False, login_path=login_path)
    principal: Principal | None = None
    try:
        principal = decode_access_token(token, key=settings.secret("token_signing_key"), now=clock.now(),
                                        allow_expired_s=settings.staff_session_idle_timeout_s)
        if principal.kind is not kind and principal.kind is not PrincipalKind.CLIENT:
            raise LoginRequired(_here(request), forget_session=False, login_path=login_path)
        if principal.kind is not kind or not subject_id(principal).isdigit():
            raise Unauthenticated(f"these pages are for {kind.value} logins", code=f"not_{kind.value}")
        async with database.transaction() as session:
            await ensure_live(session, clock, principal, idle_timeout_s=settings.staff_session_idle_timeout_s,
                              clients=client_state_cache(request.app))
            if kind is PrincipalKind.STAFF:
                principal = await staff.refreshed_principal(session, int(subject_id(principal)), principal.session_id)
            # A resident's roles never change, and re-reading the account would be an access to personal data.
    except Unauthenticated as exc:
        await authentication_failed(database, clock, principal, "web_session", detail=exc.code)
        raise LoginRequired(_here(request), forget_session=True, login_path=login_path) from exc
    return principal


def _login_dependency(kind: PrincipalKind, scopes: tuple[Scope, ...],
                      login_path: str | None = None) -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request, settings: SettingsDep, clock: ClockDep,
                         database: DatabaseDep) -> Principal:
        principal = await _cookie_principal(request, settings, clock, database, kind, login_path)
        request.state.principal = principal
        missing = [scope for scope in scopes if not principal.has(scope)]
        if missing:
            await record_now(database, clock, principal, Action.DENIED, "route", resource_id=request.url.path,
                             detail=f"insufficient_scope: {' '.join(missing)}")
            raise Forbidden(f"this page needs scope {', '.join(missing)}", code="insufficient_scope",
                            field="scope", value=" ".join(missing))
        request.state.renewed_session_token = session_token(principal, settings, clock)
        return principal

    dependency.required_scopes = scopes  # type: ignore[attr-defined]  # read by the route audit test
    return dependency


def require_login(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """Like security's `require`, for pages: the staff session in the cookie, then every listed scope.

    No cookie, or one whose session has ended, redirects to /login (and a bad cookie is audited);
    a live login without the scopes is refused with 403, audited.
    """
    return _login_dependency(PrincipalKind.STAFF, scopes)


def require_resident(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """The same for the resident booking pages: the resident session in the cookie, else /booking/login."""
    return _login_dependency(PrincipalKind.RESIDENT, scopes)


def require_app_resident(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """The same for the resident app's pages, whose sign-in is the phone and an SMS code (/app/login)."""
    return _login_dependency(PrincipalKind.RESIDENT, scopes, APP_LOGIN)


async def _optional(request: Request, kind: PrincipalKind) -> Principal | None:
    state = request.app.state
    try:
        principal = await _cookie_principal(request, state.settings, state.clock, state.database, kind)
    except LoginRequired as refused:
        request.state.forget_session = refused.forget_session
        return None
    request.state.principal = principal
    request.state.renewed_session_token = session_token(principal, state.settings, state.clock)
    return principal


async def optional_resident(request: Request) -> Principal | None:
    """The signed-in resident on a public page, or None: no cookie, another kind of login, an ended one.

    Only the token and its session are checked (no personal data is read); a public page never redirects.
    """
    return await _optional(request, PrincipalKind.RESIDENT)


async def optional_staff(request: Request) -> Principal | None:
    """The signed-in member of staff on a public page (the bulletin's editor, who sees what is not yet
    published), or None, as `optional_resident`; what the principal may see is the page's to decide."""
    return await _optional(request, PrincipalKind.STAFF)
