"""Authenticated callers for tests: tokens minted exactly as the platform mints them."""

from __future__ import annotations

from fastapi import FastAPI

from cityhealth.security.principals import (
    Principal,
    PrincipalKind,
    Role,
    Scope,
    scopes_for_roles,
)
from cityhealth.security.tokens import issue_access_token


def staff(*roles: Role, organization_id: int | None = None, user_id: int = 1) -> Principal:
    role_set = frozenset(roles)
    return Principal(kind=PrincipalKind.STAFF, subject=f"staff:{user_id}", roles=role_set,
                     scopes=scopes_for_roles(role_set), organization_id=organization_id)


def machine(*scopes: Scope, organization_id: int | None = None, client_app_id: int | None = None,
            client_id: str = "test-client") -> Principal:
    return Principal(kind=PrincipalKind.CLIENT, subject=f"client:{client_id}", scopes=frozenset(scopes),
                     organization_id=organization_id, client_app_id=client_app_id)


def resident(resident_id: int, account_id: int = 1) -> Principal:
    return Principal(kind=PrincipalKind.RESIDENT, subject=f"resident-account:{account_id}",
                     roles=frozenset({Role.RESIDENT}), scopes=scopes_for_roles(frozenset({Role.RESIDENT})),
                     resident_id=resident_id)


async def headers_for(app: FastAPI, principal: Principal) -> dict[str, str]:
    """Authorization headers for a principal, signed with the app's key at the app's clock.

    Async because the security layer may need backing rows (a staff session, a registered client).
    """
    settings = app.state.settings
    token = issue_access_token(principal, key=settings.secret("token_signing_key"),
                               now=app.state.clock.now(), ttl_s=settings.access_token_ttl_s)
    return {"Authorization": f"Bearer {token}"}


async def admin_headers(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.PLATFORM_ADMIN))
