"""Helpers shared by the authentication endpoints (security's own, and the registry's resident accounts)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import TooManyRequests
from cityhealth.security.failures import authentication_failed
from cityhealth.security.principals import Principal
from cityhealth.security.ratelimit import auth_rate_limiter
from cityhealth.security.schemas import TokenResponse
from cityhealth.security.tokens import issue_access_token

# RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def source_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def token_response(principal: Principal, settings: Settings, clock: Clock) -> JSONResponse:
    """An access token for `principal`, living `access_token_ttl_s` (at most 300 s)."""
    token = issue_access_token(principal, key=settings.secret("token_signing_key"), now=clock.now(),
                               ttl_s=settings.access_token_ttl_s)
    body = TokenResponse(access_token=token, expires_in=settings.access_token_ttl_s,
                         scope=" ".join(sorted(principal.scopes)))
    return JSONResponse(body.model_dump(), headers=NO_STORE)


async def limit_auth_attempts(request: Request, settings: Settings, clock: Clock, database: Database, *,
                              account: str | None) -> None:
    """Count an authentication attempt from this address and on this account; 429 past the limit (recorded
    in bounded form, like a failed authentication)."""
    try:
        await auth_rate_limiter(request.app, settings).hit(address=source_address(request), account=account)
    except TooManyRequests:
        await authentication_failed(database, clock, None, "authentication", detail="rate_limited",
                                    actor=account or "anonymous", rate_limited=True)
        raise
