"""The security API: tokens (clients, staff), sessions, second factor, a resident's access log, and the
administration of staff users and machine clients. Thin: parse, call the use case, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import Int64, RowId
from cityhealth.errors import NotFound, Unauthenticated
from cityhealth.security import sessions, staff
from cityhealth.security.access_log import MAX_PAGE, access_log
from cityhealth.security.audit import Action, record, record_now
from cityhealth.security.clients import (
    JwksFetcher,
    OAuthError,
    exchange_assertion,
    register_client,
    registered_clients,
    revoke_client,
    unverified_issuer,
)
from cityhealth.security.dependencies import client_state_cache, require
from cityhealth.security.endpoints import NO_STORE, limit_auth_attempts, source_address, token_response
from cityhealth.security.failures import authentication_failed
from cityhealth.security.models import MachineClient, StaffUser
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.residents import refreshed_principal as refreshed_resident_principal
from cityhealth.security.schemas import (
    AccessLogPage,
    ClientCreate,
    ClientRead,
    OAuthErrorResponse,
    SessionRead,
    StaffCreate,
    StaffCreated,
    StaffLogin,
    StaffRead,
    TokenResponse,
    TotpConfirmation,
    TotpEnrolment,
    TotpEnrolmentStart,
)
from cityhealth.security.tokens import decode_access_token

router = APIRouter()
auth = APIRouter(prefix="/api/auth", tags=["authentication"])
me = APIRouter(prefix="/api/me", tags=["me"])
admin = APIRouter(prefix="/api/security", tags=["security administration"])

Authenticated = Annotated[Principal, Depends(require())]
ResidentSelf = Annotated[Principal, Depends(require(Scope.RESIDENT_SELF))]
SecurityAdmin = Annotated[Principal, Depends(require(Scope.SECURITY_ADMIN))]
_bearer = HTTPBearer(auto_error=False)


def _jwks_fetcher(request: Request) -> JwksFetcher:
    fetcher: JwksFetcher | None = getattr(request.app.state, "security_jwks_fetcher", None)
    if fetcher is None:
        fetcher = request.app.state.security_jwks_fetcher = JwksFetcher()
    return fetcher


@auth.post("/token", name="oauth_token", response_model=TokenResponse,
           summary="OAuth2 client credentials with a signed JWT client assertion (SMART Backend Services)",
           responses={400: {"model": OAuthErrorResponse, "description": "RFC 6749 error: a malformed request"},
                      401: {"model": OAuthErrorResponse, "description": "RFC 6749 error: invalid_client"}})
async def token(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    grant_type: Annotated[str | None, Form()] = None,
    client_assertion_type: Annotated[str | None, Form()] = None,
    client_assertion: Annotated[str | None, Form(max_length=16384)] = None,
    scope: Annotated[str | None, Form(max_length=2048)] = None,
) -> JSONResponse:
    issuer = unverified_issuer(client_assertion) if client_assertion else None
    await limit_auth_attempts(request, settings, clock, database, account=f"client:{issuer}" if issuer else None)
    try:
        async with database.transaction() as session:
            grant = await exchange_assertion(
                # The audience is the configured public URL of this route, never one built from the
                # request's Host: an assertion made for another server must not be accepted here.
                session, clock, _jwks_fetcher(request),
                token_url=settings.public_url(request.app.url_path_for("oauth_token")),
                grant_type=grant_type, assertion_type=client_assertion_type, assertion=client_assertion,
                scope=scope)
    except OAuthError as exc:
        await authentication_failed(database, clock, None, "access_token", action=Action.TOKEN,
                                    resource_id=issuer, detail=f"{exc.error}: {exc.message}",
                                    actor=f"client:{issuer or 'unknown'}", actor_kind=PrincipalKind.CLIENT.value)
        headers = dict(NO_STORE)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
    # The exchange has just read the client unrevoked: its first request need not read it again.
    client_state_cache(request.app).put(sessions.subject_id(grant.principal), True, clock.now())
    return token_response(grant.principal, settings, clock)


@auth.post("/login", response_model=TokenResponse, summary="Staff login: password and TOTP code")
async def login(body: StaffLogin, request: Request, settings: SettingsDep, clock: ClockDep,
                database: DatabaseDep) -> JSONResponse:
    await limit_auth_attempts(request, settings, clock, database, account=f"staff:{body.username}")
    # Its own transaction, committed even when the login is refused: the failure counts towards lockout.
    async with database.transaction() as session:
        result = await staff.login(session, clock, settings, username=body.username,
                                   password=body.password.get_secret_value(), totp=body.totp,
                                   source_address=source_address(request))
    if result.principal is None:
        raise _login_refusal(result.failure or "")
    return token_response(result.principal, settings, clock)


def _login_refusal(failure: str) -> Unauthenticated:
    if failure == "totp_required":
        return Unauthenticated("a TOTP code from the authenticator app is required", code="totp_required",
                               field="totp")
    if failure == "totp_not_enrolled":
        return Unauthenticated("this role requires a second factor, and none is enrolled; ask an "
                               "administrator", code="second_factor_not_enrolled")
    # Unknown user, wrong password or code, locked, inactive: one answer, so none of them can be probed.
    return Unauthenticated("invalid credentials, or the account is temporarily locked", code="invalid_credentials")


@auth.post("/refresh", response_model=TokenResponse,
           summary="A new access token for a live session (the old token may have expired meanwhile)")
async def refresh(
    request: Request, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> JSONResponse:
    await limit_auth_attempts(request, settings, clock, database, account=None)
    principal: Principal | None = None
    try:
        if credentials is None:
            raise Unauthenticated("a bearer access token is required", code="missing_token")
        principal = decode_access_token(credentials.credentials, key=settings.secret("token_signing_key"),
                                        now=clock.now(), allow_expired_s=settings.staff_session_idle_timeout_s)
        if principal.kind is PrincipalKind.CLIENT:
            raise Unauthenticated("machine clients request a new token with a new client assertion",
                                  code="use_client_assertion")
        async with database.transaction() as session:
            await sessions.ensure_live(session, clock, principal, idle_timeout_s=settings.staff_session_idle_timeout_s,
                                       clients=client_state_cache(request.app))
            renewed = await _renewed(session, principal)
            record(session, clock, renewed, Action.TOKEN, "access_token", resident_ids=[renewed.resident_id],
                   detail="refresh")
    except Unauthenticated as exc:
        await authentication_failed(database, clock, principal, "access_token", detail=f"refresh: {exc.code}")
        raise
    return token_response(renewed, settings, clock)


async def _renewed(session: AsyncSession, principal: Principal) -> Principal:
    """The principal as the database says now: roles changed since login apply from the next token."""
    owner = int(sessions.subject_id(principal))
    if principal.kind is PrincipalKind.STAFF:
        return await staff.refreshed_principal(session, owner, principal.session_id)
    return await refreshed_resident_principal(session, owner, principal.session_id)


@auth.post("/logout", status_code=204, summary="End the caller's session")
async def logout(principal: Authenticated, session: SessionDep, clock: ClockDep) -> None:
    await sessions.logout(session, clock, principal)


@auth.post("/totp/enrol", response_model=TotpEnrolment, summary="Begin enrolling an authenticator (staff)")
async def totp_enrol(body: TotpEnrolmentStart, principal: Authenticated, session: SessionDep, clock: ClockDep,
                     settings: SettingsDep) -> JSONResponse:
    uri = await staff.begin_totp_enrolment(session, clock, settings, principal, current_code=body.current_code)
    return JSONResponse(TotpEnrolment(provisioning_uri=uri).model_dump(), headers=NO_STORE)


@auth.post("/totp/confirm", status_code=204, summary="Confirm the new authenticator with one of its codes")
async def totp_confirm(body: TotpConfirmation, principal: Authenticated, session: SessionDep, clock: ClockDep,
                       settings: SettingsDep) -> None:
    await staff.confirm_totp_enrolment(session, clock, settings, principal, code=body.code)


@me.get("/access-log", response_model=AccessLogPage, summary="Who accessed my record, and when (residents)")
async def my_access_log(principal: ResidentSelf, session: SessionDep, clock: ClockDep,
                        before: Annotated[Int64 | None, Query(ge=1)] = None,
                        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50) -> AccessLogPage:
    return await access_log(session, clock, principal, before=before, limit=limit)


@me.get("/sessions", response_model=list[SessionRead], summary="My live sessions (staff and residents)")
async def my_sessions(principal: Authenticated, session: SessionDep) -> list[SessionRead]:
    rows = await sessions.live_sessions(session, principal)
    return [SessionRead(id=row.id, created_at=row.created_at, last_seen_at=row.last_seen_at,
                        source_address=row.source_address, is_current=row.id == principal.session_id)
            for row in rows]


@me.delete("/sessions/{session_id}", status_code=204, summary="End one of my sessions (another device)")
async def end_my_session(session_id: str, principal: Authenticated, session: SessionDep, clock: ClockDep,
                         database: DatabaseDep) -> None:
    if session_id not in {row.id for row in await sessions.live_sessions(session, principal)}:
        await record_now(database, clock, principal, Action.DEACTIVATE, "session", detail="not the caller's")
        raise NotFound("no such session", field="session_id")
    target = Principal(kind=principal.kind, subject=principal.subject, scopes=frozenset(), session_id=session_id)
    await sessions.end_session(session, clock, target, "ended_by_owner")
    record(session, clock, principal, Action.DEACTIVATE, "session", resident_ids=[principal.resident_id])


def _client_read(client: MachineClient) -> ClientRead:
    return ClientRead(client_id=client.client_id, name=client.name, organization_id=client.organization_id,
                      client_app_id=client.client_app_id, scopes=client.scopes.split(), jwks_url=client.jwks_url,
                      created_at=client.created_at, revoked_at=client.revoked_at)


@admin.post("/clients", response_model=ClientRead, status_code=201, summary="Register a machine client")
async def create_client(body: ClientCreate, principal: SecurityAdmin, session: SessionDep, clock: ClockDep,
                        settings: SettingsDep) -> ClientRead:
    client = await register_client(
        session, clock, principal, client_id=body.client_id, name=body.name, scopes=" ".join(body.scopes),
        organization_id=body.organization_id, client_app_id=body.client_app_id, jwks=body.jwks,
        jwks_url=body.jwks_url, allow_http_jwks_url=settings.env.value != "production")
    return _client_read(client)


@admin.get("/clients", response_model=list[ClientRead], summary="Registered machine clients")
async def list_clients(principal: SecurityAdmin, session: SessionDep) -> list[ClientRead]:
    return [_client_read(client) for client in await registered_clients(session)]


@admin.post("/clients/{client_id}/revoke", response_model=ClientRead, summary="Revoke a machine client")
async def revoke(client_id: str, request: Request, principal: SecurityAdmin, session: SessionDep,
                 clock: ClockDep) -> ClientRead:
    client = await revoke_client(session, clock, principal, client_id)
    client_state_cache(request.app).forget(client_id)  # this worker stops at once; others within 30 s
    return _client_read(client)


def _staff_read(user: StaffUser) -> StaffRead:
    return StaffRead(id=user.id, username=user.username, display_name=user.display_name,
                     roles=sorted(staff.parse_roles(user.roles)), organization_id=user.organization_id,
                     is_active=user.is_active, locked_until=user.locked_until,
                     has_second_factor=user.totp_secret_enc is not None)


@admin.post("/staff", response_model=StaffCreated, status_code=201, summary="Create a staff user")
async def create_staff(body: StaffCreate, principal: SecurityAdmin, session: SessionDep, clock: ClockDep,
                       settings: SettingsDep) -> JSONResponse:
    created = await staff.create_staff_user(
        session, clock, settings, username=body.username, display_name=body.display_name,
        password=body.password.get_secret_value(), roles=frozenset(body.roles), organization_id=body.organization_id)
    record(session, clock, principal, Action.CREATE, "staff_user", resource_id=created.user.id)
    payload = StaffCreated(user=_staff_read(created.user), totp_provisioning_uri=created.totp_uri)
    return JSONResponse(payload.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@admin.get("/staff", response_model=list[StaffRead], summary="Staff users")
async def list_staff(principal: SecurityAdmin, session: SessionDep, clock: ClockDep,
                     organization_id: RowId | None = None) -> list[StaffRead]:
    users = await staff.staff_users(session, organization_id=organization_id)
    record(session, clock, principal, Action.LIST, "staff_user", detail=f"{len(users)} users")
    return [_staff_read(user) for user in users]


@admin.post("/staff/{user_id}/unlock", response_model=StaffRead, summary="Lift a login lockout")
async def unlock_staff(user_id: RowId, principal: SecurityAdmin, session: SessionDep, clock: ClockDep) -> StaffRead:
    user = await staff.unlock(session, clock, user_id)
    record(session, clock, principal, Action.UPDATE, "staff_user", resource_id=user_id, detail="unlocked")
    return _staff_read(user)


@admin.post("/staff/{user_id}/deactivate", response_model=StaffRead,
            summary="Disable a staff user and end their sessions")
async def deactivate_staff(user_id: RowId, principal: SecurityAdmin, session: SessionDep,
                           clock: ClockDep) -> StaffRead:
    user = await staff.deactivate(session, clock, user_id)
    record(session, clock, principal, Action.DEACTIVATE, "staff_user", resource_id=user_id)
    return _staff_read(user)


router.include_router(auth)
router.include_router(me)
router.include_router(admin)
