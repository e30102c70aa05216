"""Authenticated callers for tests: tokens minted exactly as the platform mints them, backed by real rows.

`headers_for` creates what the security layer checks on every request: a staff user and a live session,
a resident account and session for an existing resident, or a registered (non-revoked) machine client.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.security import repository
from cityhealth.security.crypto import Purpose, field_cipher
from cityhealth.security.models import MachineClient, ResidentAccount, StaffUser
from cityhealth.security.principals import (
    Principal,
    PrincipalKind,
    Role,
    Scope,
    scopes_for_roles,
)
from cityhealth.security.sessions import open_resident_session, open_staff_session
from cityhealth.security.tokens import decode_access_token, issue_access_token

# Not an argon2 hash: factory-made users and accounts can never log in with a password.
_NO_PASSWORD = "!factory-made"
# A public key whose private half is thrown away: factory clients get their tokens through headers_for.
_FACTORY_JWKS = json.dumps({"keys": [{
    **json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())),
    "kid": "factory"}]})


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

    Creates the rows the principal needs first. Staff users and accounts keep the id the principal names
    (`staff:1`, `resident-account:1`) unless that id already belongs to someone else (a user the test made
    through the platform, another resident's account): then the token names the row it really has.
    """
    settings = app.state.settings
    async with app.state.database.transaction() as session:
        if principal.kind is PrincipalKind.STAFF:
            principal = await _backed_staff(app, session, principal)
        elif principal.kind is PrincipalKind.RESIDENT:
            principal = await _backed_resident(app, session, principal)
        else:
            await _backed_client(app, session, principal)
    token = issue_access_token(principal, key=settings.secret("token_signing_key"),
                               now=app.state.clock.now(), ttl_s=settings.access_token_ttl_s)
    return {"Authorization": f"Bearer {token}"}


def reissued(app: FastAPI, headers: dict[str, str], *, without: frozenset[Scope]) -> dict[str, str]:
    """The same caller (subject, session, organization, roles) in a fresh token that lacks `without`."""
    settings, now = app.state.settings, app.state.clock.now()
    key = settings.secret("token_signing_key")
    principal = decode_access_token(headers["Authorization"].removeprefix("Bearer "), key=key, now=now)
    narrowed = dataclasses.replace(principal, scopes=principal.scopes - without)
    token = issue_access_token(narrowed, key=key, now=now, ttl_s=settings.access_token_ttl_s)
    return {"Authorization": f"Bearer {token}"}


async def admin_headers(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.PLATFORM_ADMIN))


async def _existing_organization(session: AsyncSession, organization_id: int | None) -> int | None:
    # Tests may name organizations they never created ("someone else's"): the row then has none, the token
    # still carries the id, and the object-level rules see exactly what the test asked for.
    if organization_id is None or not await repository.organization_exists(session, organization_id):
        return None
    return organization_id


async def _bump_sequence(session: AsyncSession, table: str) -> None:
    # Explicit ids leave PostgreSQL's sequence behind; later inserts by the code under test must not collide.
    if session.get_bind().dialect.name == "postgresql":
        # `table` is one of two literals of this module, never input.
        statement = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"  # noqa: S608
        await session.execute(text(statement))


async def _backed_staff(app: FastAPI, session: AsyncSession, principal: Principal) -> Principal:
    user_id = int(principal.subject.removeprefix("staff:"))
    now = app.state.clock.now()
    user = await session.get(StaffUser, user_id)
    if user is None or user.password_hash != _NO_PASSWORD:
        # A real user (made by the test through the platform) holds that id: never hijack it.
        user = StaffUser(id=None if user else user_id, username=f"staff-factory-{uuid.uuid4().hex[:8]}",
                         display_name=f"Test staff {user_id}", password_hash=_NO_PASSWORD, roles="",
                         failed_logins=0, is_active=True, created_at=now, updated_at=now)
        session.add(user)
    user.roles = " ".join(sorted(principal.roles))
    user.organization_id = await _existing_organization(session, principal.organization_id)
    await session.flush()
    await _bump_sequence(session, "staff_users")
    opened = await open_staff_session(session, app.state.clock, user.id, "127.0.0.1")
    return dataclasses.replace(principal, subject=f"staff:{user.id}", session_id=opened.id)


async def _backed_resident(app: FastAPI, session: AsyncSession, principal: Principal) -> Principal:
    resident_id = principal.resident_id
    if resident_id is None:
        raise ValueError("a resident principal needs a resident_id")
    residents_table = text("SELECT id FROM residents WHERE id = :id")
    if (await session.execute(residents_table, {"id": resident_id})).first() is None:
        raise ValueError(f"resident({resident_id}): create the resident first (tests/factories/registry.py); "
                         "a resident account is bound to an existing master-index resident")
    account = await repository.account_of_resident(session, resident_id)
    if account is None:
        wanted = int(principal.subject.removeprefix("resident-account:"))
        taken = await session.get(ResidentAccount, wanted) is not None
        now = app.state.clock.now()
        phone = f"139{resident_id % 10**8:08d}"
        cipher = field_cipher(app.state.settings)
        account = ResidentAccount(resident_id=resident_id, phone_hash=cipher.lookup_hash(Purpose.ACCOUNT_PHONE, phone),
                                  phone_enc=cipher.encrypt(Purpose.ACCOUNT_PHONE, phone), password_hash=_NO_PASSWORD,
                                  failed_logins=0, is_active=True, created_at=now, updated_at=now)
        if not taken:
            account.id = wanted
        session.add(account)
        await session.flush()
        await _bump_sequence(session, "resident_accounts")
    opened = await open_resident_session(session, app.state.clock, account.id, "127.0.0.1")
    return dataclasses.replace(principal, subject=f"resident-account:{account.id}", session_id=opened.id)


async def _backed_client(app: FastAPI, session: AsyncSession, principal: Principal) -> None:
    client_id = principal.subject.removeprefix("client:")
    now = app.state.clock.now()
    client = await repository.machine_client(session, client_id)
    if client is None:
        client = MachineClient(client_id=client_id, name=f"test client {client_id}", scopes="",
                               jwks=_FACTORY_JWKS, created_at=now, updated_at=now)
        session.add(client)
    # One client id may stand for several test principals: the row keeps the latest, tokens keep their own.
    client.scopes = " ".join(sorted(principal.scopes))
    client.organization_id = await _existing_organization(session, principal.organization_id)
    client.client_app_id = principal.client_app_id if principal.client_app_id is not None and (
        await repository.client_app_exists(session, principal.client_app_id)) else None
    await session.flush()
