"""Resident accounts: creation (after the registry's real-name check), login, lockout.

The real-name check itself needs the master patient index, which sits above security: it lives in
registry/accounts.py, which calls these functions with the resident it has matched.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, Unauthenticated
from cityhealth.security import repository
from cityhealth.security.audit import Action, Outcome, record
from cityhealth.security.credentials import (
    MIN_RESIDENT_PASSWORD_CHARS,
    burn_password_check,
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from cityhealth.security.crypto import Purpose, field_cipher
from cityhealth.security.models import ResidentAccount
from cityhealth.security.principals import Principal, PrincipalKind, Role, scopes_for_roles
from cityhealth.security.sessions import open_resident_session
from cityhealth.security.staff import LoginResult

# domain.md §4: one phone number may hold at most 3 accounts (a parent registering the children).
MAX_ACCOUNTS_PER_PHONE = 3
_RESIDENT_ROLES = frozenset({Role.RESIDENT})


def resident_principal(account: ResidentAccount, session_id: str | None) -> Principal:
    return Principal(kind=PrincipalKind.RESIDENT, subject=f"resident-account:{account.id}", roles=_RESIDENT_ROLES,
                     scopes=scopes_for_roles(_RESIDENT_ROLES), resident_id=account.resident_id,
                     session_id=session_id)


async def refreshed_principal(session: AsyncSession, account_id: int, session_id: str | None) -> Principal:
    """The Principal of a live resident session, as the account stands now."""
    account = await repository.resident_account(session, account_id)
    if account is None:
        raise Unauthenticated("no resident account behind this session", code="session_ended")
    return resident_principal(account, session_id)


async def create_account(session: AsyncSession, clock: Clock, settings: Settings, *, resident_id: int,
                         phone: str, password: str) -> ResidentAccount:
    """Open the account of a resident the registry has matched; 409 past 3 accounts on one phone."""
    check_password_policy(password, minimum=MIN_RESIDENT_PASSWORD_CHARS)
    cipher = field_cipher(settings)
    phone_hash = cipher.lookup_hash(Purpose.ACCOUNT_PHONE, phone)
    await repository.lock_phone_for_registration(session, phone_hash)
    if await repository.account_of_resident(session, resident_id) is not None:
        raise Conflict("this resident already has an account; log in or reset its password",
                       code="account_exists", field="id_number", rule="account.one_per_resident")
    if await repository.accounts_on_phone(session, phone_hash) >= MAX_ACCOUNTS_PER_PHONE:
        raise Conflict(f"phone: this phone number already holds {MAX_ACCOUNTS_PER_PHONE} accounts",
                       code="phone_account_limit", field="phone", rule="phone.max_accounts")
    now = clock.now()
    account = ResidentAccount(resident_id=resident_id, phone_hash=phone_hash,
                              phone_enc=cipher.encrypt(Purpose.ACCOUNT_PHONE, phone),
                              password_hash=hash_password(password), failed_logins=0, is_active=True,
                              created_at=now, updated_at=now)
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration for the same resident won
        raise Conflict("this resident already has an account", code="account_exists", field="id_number",
                       rule="account.one_per_resident") from exc
    record(session, clock, resident_principal(account, None), Action.CREATE, "resident_account",
           resource_id=account.id, resident_ids=[resident_id])
    return account


async def account_for_login(session: AsyncSession, resident_id: int | None) -> ResidentAccount | None:
    """The account of a matched resident, locked for the failure counter (None passes through)."""
    if resident_id is None:
        return None
    return await repository.account_of_resident(session, resident_id, for_update=True)


async def login(session: AsyncSession, clock: Clock, settings: Settings, *, account: ResidentAccount | None,
                password: str, source_address: str | None) -> LoginResult:
    """Check the password of the account the registry found (None: no such resident or account)."""
    now = clock.now()
    if account is None or not account.is_active:
        burn_password_check(password)
        return _refuse(session, clock, account, "unknown_or_inactive")
    if account.locked_until is not None and account.locked_until > now:
        burn_password_check(password)
        return _refuse(session, clock, account, "locked")
    if not verify_password(account.password_hash, password):
        account.failed_logins += 1
        reason = "bad_password"
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = now + timedelta(seconds=settings.login_lockout_s)
            account.failed_logins = 0
            reason += "; locked"
        account.updated_at = now
        return _refuse(session, clock, account, reason)
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.failed_logins, account.locked_until, account.updated_at = 0, None, now
    resident_session = await open_resident_session(session, clock, account.id, source_address)
    principal = resident_principal(account, resident_session.id)
    record(session, clock, principal, Action.LOGIN, "resident_session", resource_id=account.id,
           resident_ids=[account.resident_id])
    return LoginResult(principal)


def _refuse(session: AsyncSession, clock: Clock, account: ResidentAccount | None, reason: str) -> LoginResult:
    record(session, clock, None, Action.LOGIN, "resident_session",
           resource_id=None if account is None else account.id, outcome=Outcome.DENIED, detail=reason,
           resident_ids=[None if account is None else account.resident_id],
           actor="resident-account:unknown" if account is None else f"resident-account:{account.id}",
           actor_kind=PrincipalKind.RESIDENT.value)
    return LoginResult(None, reason)


async def accounts_of_phone(session: AsyncSession, phone_hash: str) -> list[ResidentAccount]:
    """The accounts a phone backs (at most MAX_ACCOUNTS_PER_PHONE), for the SMS sign-in."""
    return await repository.accounts_of_phone(session, phone_hash)


async def login_with_code(session: AsyncSession, clock: Clock, account: ResidentAccount,
                          source_address: str | None) -> LoginResult:
    """Open a session for an account whose phone has just proved itself with a one-time code (security/sms.py).

    A password lockout does not bar it (the code is the second factor the lockout stands in for); an
    inactive account is refused.
    """
    if not account.is_active:
        return _refuse(session, clock, account, "inactive")
    account.updated_at = clock.now()
    resident_session = await open_resident_session(session, clock, account.id, source_address)
    principal = resident_principal(account, resident_session.id)
    record(session, clock, principal, Action.LOGIN, "resident_session", resource_id=account.id,
           resident_ids=[account.resident_id], detail="sms_code")
    return LoginResult(principal)
