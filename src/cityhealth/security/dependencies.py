"""Authorization as typed FastAPI dependencies: `Annotated[Principal, Depends(require(Scope.X))]`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cityhealth.context import ClockDep, SettingsDep
from cityhealth.errors import Forbidden, Unauthenticated
from cityhealth.security.principals import Principal, Scope
from cityhealth.security.tokens import decode_access_token

_bearer = HTTPBearer(auto_error=False)


async def authenticate(
    request: Request,
    settings: SettingsDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer access token is required", code="missing_token")
    principal = decode_access_token(
        credentials.credentials, key=settings.secret("token_signing_key"), now=clock.now()
    )
    request.state.principal = principal
    return principal


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and demands every listed scope."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        missing = [scope for scope in scopes if not principal.has(scope)]
        if missing:
            raise Forbidden(
                f"this operation needs scope {', '.join(missing)}",
                code="insufficient_scope", field="scope", value=" ".join(missing),
            )
        return principal

    dependency.required_scopes = scopes  # type: ignore[attr-defined]  # read by the route audit test
    return dependency


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
