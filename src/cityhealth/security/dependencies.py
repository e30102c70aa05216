"""Authorization as typed FastAPI dependencies: `Annotated[Principal, Depends(require(Scope.X))]`.

`authenticate` verifies the bearer token and that its session is live or its client not revoked;
`require(*scopes)` adds the scope check (every scope), `require_any(*scopes)` the looser one (one of
them). Every refusal is audited before the 401/403 leaves (a failed authentication in bounded form:
security/failures.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import DomainError, Forbidden, Unauthenticated
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.failures import authentication_failed
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from cityhealth.security.sessions import ClientStateCache, client_live_from_cache, ensure_live, subject_id
from cityhealth.security.tokens import VerifiedTokens

_bearer = HTTPBearer(auto_error=False)


_Cache = TypeVar("_Cache")


def _per_app(app: FastAPI, name: str, make: Callable[[], _Cache]) -> _Cache:
    """The app's object under `name` in its state, made on first use (one per worker process)."""
    found: _Cache | None = getattr(app.state, name, None)
    if found is None:
        found = make()
        setattr(app.state, name, found)
    return found


def client_state_cache(app: FastAPI) -> ClientStateCache:
    """The app's cache of machine-client revocation state."""
    return _per_app(app, "security_client_cache", ClientStateCache)


def verified_tokens(app: FastAPI) -> VerifiedTokens:
    """The app's cache of verified access tokens."""
    return _per_app(app, "security_verified_tokens", VerifiedTokens)


def token_key(app: FastAPI, settings: Settings) -> bytes:
    """The app's token signing key, read once (in development it comes from a file under var/)."""
    return _per_app(app, "security_token_key", lambda: settings.secret("token_signing_key"))


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def bearer_credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The bearer scheme's answer, for a route that calls a guard itself (booking.api.AttemptRoute)."""
    return await _bearer(request)


async def authenticate(request: Request, credentials: Credentials) -> Principal:
    """The caller behind the bearer token: verified (or found verified in the cache), its session or client live.

    Takes the settings, clock and database from the app's state rather than as dependencies of its own: every
    sub-dependency costs FastAPI tens of microseconds to solve, on every authenticated request (so `require`
    calls this directly too, rather than depending on it).
    """
    app = request.app
    state = app.state
    settings: Settings = state.settings
    clock: Clock = state.clock
    database: Database = state.database
    principal: Principal | None = None
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("a bearer access token is required", code="missing_token")
        now = clock.now()
        principal = verified_tokens(app).decode(credentials.credentials, key=token_key(app, settings), now=now)
        clients = client_state_cache(app)
        if not client_live_from_cache(principal, clients, now):
            await _check_live(database, clock, settings, principal, clients)
    except Unauthenticated as exc:
        await authentication_failed(database, clock, principal, "access_token", detail=exc.code)
        raise
    request.state.principal = principal
    return principal


async def _check_live(database: Database, clock: Clock, settings: Settings, principal: Principal,
                      clients: ClientStateCache) -> None:
    """The liveness check in the database; one at a time per machine client, the others reading its result."""
    owner = subject_id(principal) if principal.kind is PrincipalKind.CLIENT else None
    under_way: asyncio.Future[None] | None = None
    if owner is not None:
        under_way = clients.checking.get(owner)
        if under_way is not None:
            await asyncio.shield(under_way)
            if client_live_from_cache(principal, clients, clock.now()):
                return  # (a revoked client raised just above; an unknown state falls through to a check)
        else:
            clients.checking[owner] = asyncio.get_running_loop().create_future()
    try:
        # A short transaction of its own: the liveness check must not hold the request's write lock
        # (SQLite) through an endpoint that works in batches of its own transactions.
        async with database.transaction() as session:
            await ensure_live(session, clock, principal, idle_timeout_s=settings.staff_session_idle_timeout_s,
                              clients=clients)
    finally:
        if owner is not None and under_way is None:
            done = clients.checking.pop(owner, None)
            if done is not None and not done.done():
                done.set_result(None)


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and demands every listed scope.

    `require()` with no scope admits any authenticated caller: for endpoints about the caller itself
    (logout, its own sessions), whose object rule is "only your own".
    """
    return _guard(scopes, any_scope=False)


def require_any(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and demands at least one of the listed scopes.

    For reads that two kinds of caller share (a sender reads its own jobs, an operator any job; a resident
    reads their own record, a resident reader any): the object rule in the service narrows what each sees.
    """
    if not scopes:
        raise ValueError("require_any() needs at least one scope; require() admits any caller")
    return _guard(scopes, any_scope=True)


def _guard(scopes: tuple[Scope, ...], *, any_scope: bool) -> Callable[..., Awaitable[Principal]]:
    async def dependency(request: Request, credentials: Credentials) -> Principal:
        principal = await authenticate(request, credentials)
        refused = not principal.has_any(*scopes) if any_scope else not all(map(principal.has, scopes))
        if refused:
            state = request.app.state
            database: Database = state.database
            clock: Clock = state.clock
            missing = list(scopes) if any_scope else [scope for scope in scopes if not principal.has(scope)]
            wanted = f"one of the scopes {', '.join(missing)}" if any_scope else f"scope {', '.join(missing)}"
            route = getattr(request.scope.get("route"), "path", None)
            await record_now(database, clock, principal, Action.DENIED, "route", resource_id=route,
                             detail=f"insufficient_scope: {' '.join(missing)}")
            raise Forbidden(f"this operation needs {wanted}", code="insufficient_scope", field="scope",
                            value=" ".join(missing))
        return principal

    # Read by the route audit test (tests/security/test_routes.py): every scope, or (any_scope) one of them.
    dependency.required_scopes = scopes  # type: ignore[attr-defined]
    dependency.any_scope = any_scope  # type: ignore[attr-defined]
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def refusals_audited(resource_type: str) -> type[APIRoute]:
    """A route class whose refusals leave an audit event on `resource_type` in a transaction of their own
    (the request's rolls back); `require` audits its own scope refusals."""

    class RefusalsAudited(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def audited(request: Request) -> Response:
                try:
                    return await handler(request)
                except DomainError as error:
                    principal: Principal | None = getattr(request.state, "principal", None)
                    if principal is not None and error.code != "insufficient_scope":
                        denied = error.status in (403, 404)
                        await record_now(request.app.state.database, request.app.state.clock, principal,
                                         Action.DENIED if denied else Action.UPDATE, resource_type,
                                         resident_ids=[principal.resident_id] if principal.resident_id else [],
                                         outcome=Outcome.DENIED if denied else Outcome.FAILURE, detail=error.code)
                    raise

            return audited

    return RefusalsAudited
