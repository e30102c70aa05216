"""Transport protections: security headers, CORS (closed unless configured), plain-HTTP refusal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhealth.config import Environment, Settings
from cityhealth.errors import Forbidden
from cityhealth.observability import problem_response

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    # Every asset is served by the platform itself; no CDN, no inline script from elsewhere.
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
     b"script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, production: bool, behind_proxy: bool) -> None:
        self.app = app
        self.production = production
        self.behind_proxy = behind_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.production and not self._is_https(scope):
            response = problem_response(
                Forbidden("plain HTTP is refused in production; use HTTPS or declare a TLS-terminating "
                          "proxy with CITYHEALTH_BEHIND_PROXY=true", code="https_required"), None)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _HEADERS if name not in present]
                if self.production:
                    headers.append(_HSTS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _is_https(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        if self.behind_proxy:
            headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
            return headers.get(b"x-forwarded-proto", b"").lower() == b"https"
        return False


def install(app: FastAPI, settings: Settings) -> None:
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
