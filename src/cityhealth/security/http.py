"""Transport protections: security headers, CORS (closed unless configured), plain-HTTP refusal; and the
per-request audit context that writes denials once the request's transaction has ended."""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhealth.config import Environment, Settings
from cityhealth.db.failures import DatabaseFailureMiddleware
from cityhealth.errors import Forbidden, TooManyRequests
from cityhealth.observability import ResponseStart, header, problem_response
from cityhealth.request_vars import client_address_var
from cityhealth.security.audit import Action, RequestAudit, record_now, request_audit_var
from cityhealth.security.failures import authentication_failed
from cityhealth.security.ratelimit import AuthRateLimiter, auth_rate_limiter

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# Every asset is served by the platform itself; no CDN, no inline script or style except an element that
# carries this response's nonce (the API docs page's one start-up script). docs/security.md §4 quotes it.
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'nonce-{nonce}'; "
        "script-src 'self' 'nonce-{nonce}'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'")
# The load balancer's health checks reach the internal port over plain HTTP; nothing else may.
PLAIN_HTTP_PATHS = frozenset({"/healthz", "/readyz"})


def content_security_policy(nonce: str) -> bytes:
    return _CSP.format(nonce=nonce).encode()


class SecurityHeadersMiddleware:
    """Security headers on every response (a fresh CSP nonce per request, in `request.state.csp_nonce` for
    a page's inline script), HSTS in production, and plain HTTP refused in production except for the
    health checks."""

    def __init__(self, app: ASGIApp, *, production: bool, behind_proxy: bool) -> None:
        self.app = app
        self.production = production
        self.behind_proxy = behind_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        policy = (b"content-security-policy", content_security_policy(nonce))

        async def add_headers(message: Message) -> None:
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(name, value) for name, value in (*_HEADERS, policy) if name not in present]
            if self.production:
                headers.append(_HSTS)
            message["headers"] = headers

        send_with_headers = ResponseStart(send, add_headers)
        if self.production and not self._is_https(scope) and scope["path"] not in PLAIN_HTTP_PATHS:
            response = problem_response(
                Forbidden("plain HTTP is refused in production; use HTTPS or declare a TLS-terminating "
                          "proxy with CITYHEALTH_BEHIND_PROXY=true", code="https_required"),
                scope["state"].get("request_id"))
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _is_https(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        if self.behind_proxy:
            return (header(scope, b"x-forwarded-proto") or b"").lower() == b"https"
        return False


class AuditMiddleware:
    """Gives each request its RequestAudit, writes deferred denials before the response starts, and
    audits any 401/403 (and an authenticated caller's 404) that left without an event of its own:
    defence in depth, no denial goes unrecorded because a service forgot.

    It is also where failed authentication is limited on every route: a 401 (or a failure recorded by
    security/failures.py) counts against the source address, and an address over its limit is refused
    with 429 before any route runs (so before its credentials are even looked at).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audit = RequestAudit()
        token = request_audit_var.set(audit)

        async def settle(message: Message) -> None:
            await self._settle(scope, audit, int(message["status"]))
            audit.closed = True

        send_after_audit = ResponseStart(send, settle)
        try:
            refusal = await self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_after_audit)
            else:
                await self.app(scope, receive, send_after_audit)
        finally:
            if not send_after_audit.started:  # an unhandled error: its denials are still written
                await audit.flush()
            audit.closed = True
            request_audit_var.reset(token)

    @staticmethod
    def _limiter(scope: Scope) -> AuthRateLimiter:
        app = scope["app"]
        return auth_rate_limiter(app, app.state.settings)

    @classmethod
    async def _refusal(cls, scope: Scope) -> Response | None:
        """A 429 (recorded in bounded form) when the source address has failed authentication too often."""
        try:
            await cls._limiter(scope).refuse_failing(client_address_var.get())
        except TooManyRequests as error:
            state = scope["app"].state
            await authentication_failed(state.database, state.clock, None, "authentication", detail=error.code,
                                        rate_limited=True)
            return problem_response(error, scope.get("state", {}).get("request_id"),
                                    getattr(error, "headers", None))
        return None

    @classmethod
    async def _settle(cls, scope: Scope, audit: RequestAudit, status: int) -> None:
        await audit.flush()
        state = scope["app"].state
        principal = scope.get("state", {}).get("principal")
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        if status == 401 and not audit.written and not audit.authentication_recorded:
            await authentication_failed(state.database, state.clock, principal, "route",
                                        resource_id=f"{scope['method']} {route}", detail=f"status {status}")
            await audit.flush()
        if status == 401 or audit.failed_authentications:
            # Every failed authentication counts, also those audited one by one (a login's wrong password).
            await cls._limiter(scope).count_failure(client_address_var.get())
        if audit.written or audit.authentication_recorded:
            return
        # 404 counts when an authenticated caller asked: it is how "not yours" answers (a scanner's probe
        # of unknown URLs, unauthenticated, is not worth an event).
        if status == 403 or (status == 404 and principal is not None):
            await record_now(state.database, state.clock, principal, Action.DENIED, "route",
                             resource_id=f"{scope['method']} {route}", detail=f"status {status}")
            await audit.flush()


def install(app: FastAPI, settings: Settings) -> None:
    # Innermost of the platform's middleware: its deferred writes run inside the request's context.
    app.add_middleware(AuditMiddleware)
    # Its writes run as the response starts, outside the routes' own answer to a database failure: a denial
    # that cannot be recorded while the database is gone is answered 503 + Retry-After (db/failures.py).
    app.add_middleware(DatabaseFailureMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            allow_credentials=False,
        )
    app.add_middleware(
        SecurityHeadersMiddleware,
        production=settings.env is Environment.PRODUCTION,
        behind_proxy=settings.behind_proxy,
    )
