"""Staff users: creation, login with password and TOTP, lockout, logout, second-factor enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.config import Settings
from cityhealth.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from cityhealth.security import repository
from cityhealth.security.audit import Action, Outcome, record
from cityhealth.security.credentials import (
    MIN_STAFF_PASSWORD_CHARS,
    burn_password_check,
    check_password_policy,
    hash_password,
    matching_totp_step,
    needs_rehash,
    new_totp_secret,
    provisioning_uri,
    verify_password,
)
from cityhealth.security.crypto import Purpose, field_cipher
from cityhealth.security.models import StaffUser
from cityhealth.security.principals import (
    SECOND_FACTOR_ROLES,
    Principal,
    PrincipalKind,
    Role,
    scopes_for_roles,
)
from cityhealth.security.sessions import end_all_staff_sessions, open_staff_session


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(value) for value in text.split())


def needs_second_factor(roles: frozenset[Role]) -> bool:
    return bool(roles & SECOND_FACTOR_ROLES)


def staff_principal(user: StaffUser, session_id: str | None) -> Principal:
    """The Principal a staff user's token carries: scopes from the roles held now."""
    roles = parse_roles(user.roles)
    return Principal(kind=PrincipalKind.STAFF, subject=f"staff:{user.id}", roles=roles,
                     scopes=scopes_for_roles(roles), organization_id=user.organization_id, session_id=session_id)


async def refreshed_principal(session: AsyncSession, user_id: int, session_id: str | None) -> Principal:
    """The Principal of a live staff session, its scopes re-read from the user's roles held now."""
    user = await repository.staff_user(session, user_id)
    if user is None:
        raise Unauthenticated("no staff user behind this session", code="session_ended")
    return staff_principal(user, session_id)


@dataclass(frozen=True)
class NewStaffUser:
    user: StaffUser
    totp_uri: str | None  # shown once, to enrol the authenticator app


async def create_staff_user(session: AsyncSession, clock: Clock, settings: Settings, *, username: str,
                            display_name: str, password: str, roles: frozenset[Role],
                            organization_id: int | None) -> NewStaffUser:
    """Create a staff user; roles that need a second factor get a TOTP secret, confirmed at first login."""
    if organization_id is not None and not await repository.organization_exists(session, organization_id):
        raise ValidationFailed(f"organization_id: no organization {organization_id}", field="organization_id",
                               value=organization_id, rule="organization.exists")
    if not roles:
        raise ValidationFailed("roles: a staff user needs at least one role", field="roles", rule="roles.required")
    if Role.RESIDENT in roles:
        raise ValidationFailed("roles: 'resident' is not a staff role; residents register their own account",
                               field="roles", value=Role.RESIDENT.value, rule="roles.staff_only")
    check_password_policy(password, minimum=MIN_STAFF_PASSWORD_CHARS)
    if await repository.staff_user_by_username(session, username) is not None:
        raise Conflict(f"username {username!r} is taken", code="username_taken", field="username", value=username)
    now = clock.now()
    secret = new_totp_secret() if needs_second_factor(roles) else None
    user = StaffUser(
        username=username, display_name=display_name, password_hash=hash_password(password),
        roles=" ".join(sorted(roles)), organization_id=organization_id,
        totp_secret_enc=None if secret is None else field_cipher(settings).encrypt(Purpose.STAFF_TOTP_SECRET, secret),
        failed_logins=0, is_active=True, created_at=now, updated_at=now,
    )
    session.add(user)
    await session.flush()
    return NewStaffUser(user, None if secret is None else provisioning_uri(secret, username))


async def staff_users(session: AsyncSession, *, organization_id: int | None = None) -> Sequence[StaffUser]:
    """Every staff user, or those of one organization."""
    return await repository.staff_users(session, organization_id=organization_id)


async def find_staff_user(session: AsyncSession, username: str, *, for_update: bool = False) -> StaffUser | None:
    """The staff user of that name, or None; `for_update` locks the row for a change in this transaction."""
    return await repository.staff_user_by_username(session, username, for_update=for_update)


async def staff_user_named(session: AsyncSession, username: str) -> StaffUser:
    user = await repository.staff_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no staff user {username!r}", field="username", value=username)
    return user


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None
    failure: str | None = None  # why, for the audit trail; the caller sees one generic refusal


async def login(session: AsyncSession, clock: Clock, settings: Settings, *, username: str, password: str,
                totp: str | None, source_address: str | None) -> LoginResult:
    """Check password and second factor, count failures towards the lockout, open a session.

    Failures are persisted by the caller's commit, so the caller commits even when this refuses.
    """
    now = clock.now()
    user = await repository.staff_user_by_username(session, username, for_update=True)
    if user is None or not user.is_active:
        burn_password_check(password)
        return _refuse(session, clock, user, username, "unknown_or_inactive")
    if user.locked_until is not None and user.locked_until > now:
        burn_password_check(password)  # no password is tested while locked: guessing gains nothing
        return _refuse(session, clock, user, username, "locked")
    if not verify_password(user.password_hash, password):
        return _fail(session, clock, settings, user, "bad_password")
    roles = parse_roles(user.roles)
    if needs_second_factor(roles) or user.totp_secret_enc is not None:
        if user.totp_secret_enc is None:
            return _refuse(session, clock, user, username, "totp_not_enrolled")
        if not totp:
            # The password was right: say what is missing. Not counted as a failure (the first of two steps).
            return _refuse(session, clock, user, username, "totp_required")
        secret = field_cipher(settings).decrypt(Purpose.STAFF_TOTP_SECRET, user.totp_secret_enc)
        step = matching_totp_step(secret, totp, now, last_step=user.totp_last_step)
        if step is None:
            return _fail(session, clock, settings, user, "bad_totp")
        user.totp_last_step = step
        if user.totp_confirmed_at is None:
            user.totp_confirmed_at = now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.updated_at = now
    staff_session = await open_staff_session(session, clock, user.id, source_address)
    principal = staff_principal(user, staff_session.id)
    record(session, clock, principal, Action.LOGIN, "staff_session", resource_id=user.id)
    return LoginResult(principal)


def _refuse(session: AsyncSession, clock: Clock, user: StaffUser | None, username: str, reason: str) -> LoginResult:
    record(session, clock, None, Action.LOGIN, "staff_session", resource_id=None if user is None else user.id,
           outcome=Outcome.DENIED, detail=reason, actor=f"staff:{user.id}" if user else "staff:unknown",
           actor_kind=PrincipalKind.STAFF.value)
    return LoginResult(None, reason)


def _fail(session: AsyncSession, clock: Clock, settings: Settings, user: StaffUser, reason: str) -> LoginResult:
    now = clock.now()
    user.failed_logins += 1
    if user.failed_logins >= settings.login_max_failures:
        user.locked_until = now + timedelta(seconds=settings.login_lockout_s)
        user.failed_logins = 0
        reason += "; locked"
    user.updated_at = now
    return _refuse(session, clock, user, user.username, reason)


async def _own_user(session: AsyncSession, principal: Principal) -> StaffUser:
    user_id = principal.subject.removeprefix("staff:")
    user = await repository.staff_user(session, int(user_id), for_update=True) if user_id.isdigit() else None
    if principal.kind is not PrincipalKind.STAFF or user is None:
        raise NotFound("no staff user behind this token", code="not_found")
    return user


async def begin_totp_enrolment(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                               *, current_code: str | None) -> str:
    """A fresh secret for the caller's authenticator; the old factor stays until a code confirms the new.

    Replacing an enrolled factor needs a code from it, so a stolen access token cannot swap it.
    """
    user = await _own_user(session, principal)
    cipher = field_cipher(settings)
    if user.totp_secret_enc is not None and user.totp_confirmed_at is not None:
        secret = cipher.decrypt(Purpose.STAFF_TOTP_SECRET, user.totp_secret_enc)
        step = None if not current_code else matching_totp_step(secret, current_code, clock.now(),
                                                                 last_step=user.totp_last_step)
        if step is None:
            raise ValidationFailed("current_code: a valid code from the enrolled authenticator is required",
                                   field="current_code", rule="totp.current_code")
        user.totp_last_step = step
    pending = new_totp_secret()
    user.totp_pending_enc = cipher.encrypt(Purpose.STAFF_TOTP_SECRET, pending)
    user.updated_at = clock.now()
    record(session, clock, principal, Action.UPDATE, "staff_totp", resource_id=user.id, detail="enrolment begun")
    return provisioning_uri(pending, user.username)


async def confirm_totp_enrolment(session: AsyncSession, clock: Clock, settings: Settings, principal: Principal,
                                 *, code: str) -> None:
    """Make the pending secret the second factor once a code from it is shown."""
    user = await _own_user(session, principal)
    if user.totp_pending_enc is None:
        raise Conflict("no enrolment is pending; begin one first", code="no_pending_enrolment")
    cipher = field_cipher(settings)
    pending = cipher.decrypt(Purpose.STAFF_TOTP_SECRET, user.totp_pending_enc)
    step = matching_totp_step(pending, code, clock.now(), last_step=None)
    if step is None:
        raise ValidationFailed("code: not a current code of the new authenticator", field="code", rule="totp.code")
    now = clock.now()
    user.totp_secret_enc, user.totp_pending_enc = user.totp_pending_enc, None
    user.totp_confirmed_at, user.totp_last_step, user.updated_at = now, step, now
    record(session, clock, principal, Action.UPDATE, "staff_totp", resource_id=user.id, detail="enrolled")


async def unlock(session: AsyncSession, clock: Clock, user_id: int) -> StaffUser:
    user = await repository.staff_user(session, user_id, for_update=True)
    if user is None:
        raise NotFound(f"no staff user {user_id}", field="user_id", value=user_id)
    user.locked_until, user.failed_logins, user.updated_at = None, 0, clock.now()
    return user


async def deactivate(session: AsyncSession, clock: Clock, user_id: int) -> StaffUser:
    """Disable a user and end every session they hold: their tokens stop working at the next request."""
    user = await repository.staff_user(session, user_id, for_update=True)
    if user is None:
        raise NotFound(f"no staff user {user_id}", field="user_id", value=user_id)
    user.is_active, user.updated_at = False, clock.now()
    await end_all_staff_sessions(session, clock, user.id, "deactivated")
    return user
